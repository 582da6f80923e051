"""A real `dagster-daemon run -w workspace.yaml` (the platform's code location) on a given DAGSTER_HOME,
started in its own session and stopped by killing its process group; its output goes to a log file that
failures quote. Used by the tests that need the daemon's own sensor, run-queue and run-launcher loops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from hive_assets_tests.conftest import stop_process
from hive_assets_tests.services import _tail

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 200


class Daemon:
    def __init__(self, home: Path, workdir: Path, env: dict[str, str], workspace: Path = REPO / "workspace.yaml"):
        self.log_path = workdir / "daemon.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace)],
            cwd=workdir, env={**os.environ, **env, "DAGSTER_HOME": str(home)}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_for(self, done, what: str, timeout: float = WAIT_S, poll_s: float = 1.0):
        deadline = time.monotonic() + timeout
        while True:
            value = done()
            if value:
                return value
            assert self.proc.poll() is None, f"dagster-daemon exited: {_tail(self.log_path.read_text())}"
            assert time.monotonic() < deadline, f"{what} not seen in {timeout}s: {_tail(self.log_path.read_text(), 4000)}"
            time.sleep(poll_s)

    def stop(self):
        stop_process(self.proc, timeout=30)  # the group: the daemon and the code server / runs it started
        self.log.close()
