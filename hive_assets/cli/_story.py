"""What a long verb shows a person: its own lines on the terminal, everything the libraries print (Dagster's
run logs, MLflow's INFO lines and download progress bars, warnings) in a log file; and the closing block
of `make demo`, saying what to run next.

`output_to_log(path)` swaps the process's file descriptors 1 and 2 for the log file for the duration of
the block, so every writer is caught, whatever stream object or handler it captured at import time
(Python loggers, tqdm, C extensions, child processes). The verb writes its own lines to the terminal
stream the block yields.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit
from typing import TextIO

MLFLOW_UI_PORT = 5000
DAGSTER_UI_PORT = 3000


@contextmanager
def output_to_log(path: Path) -> Iterator[TextIO]:
    """Within the block, fds 1 and 2 write (append) to `path`; yields a line-buffered stream to the
    terminal's stderr for the verb's own progress lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    try:
        with open(path, "ab") as log:
            for fd in (1, 2):
                os.dup2(log.fileno(), fd)
            try:
                yield terminal
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd in (1, 2):
                    os.dup2(saved[fd], fd)
    finally:
        for fd in saved.values():
            os.close(fd)
        terminal.close()


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is inside it (shorter to copy), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _code_location() -> str:
    """`-w <the repository's workspace.yaml>` as the working directory reaches it ("workspace.yaml" in the
    repository, where `make demo` runs; a bare name elsewhere named a file that is not there), or the module
    where there is no checkout (an installed package)."""
    workspace = Path(__file__).resolve().parents[2] / "workspace.yaml"
    return f"-w {shlex.quote(_shown(workspace))}" if workspace.is_file() else "-m hive_assets.definitions"


def next_steps(hive_home: Path, tracking_uri: str, logs: list[Path]) -> str:
    """The closing block: what to run next, with exact commands and URLs for this home (each UI in a
    terminal of its own; the exports make new runs link between the two UIs)."""
    from hive_assets.config import redact_uri
    from hive_assets.registry import ui_base

    bin_dir = _shown(Path(sys.executable).parent)
    # the addresses the runs' links were written with (`make demo DAGSTER_WEBSERVER_URL=... MLFLOW_UI_URL=...`),
    # so the UIs started as said here are where those links point
    dagster_url = os.environ.get("DAGSTER_WEBSERVER_URL", "").rstrip("/") or f"http://127.0.0.1:{DAGSTER_UI_PORT}"
    dagster_port = urlsplit(dagster_url).port or DAGSTER_UI_PORT
    local = urlsplit(tracking_uri).scheme.lower() not in ("http", "https")
    mlflow_url = (os.environ.get("MLFLOW_UI_URL", "").rstrip("/") or f"http://127.0.0.1:{MLFLOW_UI_PORT}") \
        if local else ui_base(tracking_uri)
    mlflow_port = urlsplit(mlflow_url).port or MLFLOW_UI_PORT
    # the home and its logs absolute, as `hive env` prints them: relative, they held only in this directory
    exports = f"export HIVE_HOME={shlex.quote(str(hive_home.resolve()))} DAGSTER_WEBSERVER_URL={dagster_url}" + (
        f" MLFLOW_UI_URL={mlflow_url}" if local else "") + (  # `mlflow ui` imports no hive_assets: say it there
        f" MLFLOW_DISABLE_TELEMETRY={shlex.quote(os.environ['MLFLOW_DISABLE_TELEMETRY'])}"
        if os.environ.get("MLFLOW_DISABLE_TELEMETRY") else "")
    width = 46
    lines = ["== what to run next (the exports first, in each terminal)",
             f"  {exports}",
             f"  {bin_dir + '/hive status':<{width}}per specialist: champion, challenger and traffic, drift, "
             "feedback, what happens next",
             f'  eval "$({bin_dir}/hive env)"; {bin_dir}/dagster dev {_code_location()}'
             + (f" -p {dagster_port}" if dagster_port != DAGSTER_UI_PORT else ""),
             f"  {'':<{width}}the Dagster UI on {dagster_url}: runs, assets and their metadata, checks, sensors"]
    if local:
        # a database URI with its password is named by the variable it came from, never printed
        backend = shlex.quote(tracking_uri) if redact_uri(tracking_uri) == tracking_uri else '"$MLFLOW_TRACKING_URI"'
        lines += [f"  {bin_dir}/mlflow ui --backend-store-uri {backend} --port {mlflow_port}",
                  f"  {'':<{width}}the MLflow UI on {mlflow_url}: runs, metrics, plots, the registry"]
    else:
        lines.append(f"  the MLflow UI: {mlflow_url}")
    if logs:
        shown = sorted({str((p.with_name("demo-*.log") if p.name.startswith("demo-") else p).resolve()) for p in logs})
        lines.append("  the full logs (Dagster runs, MLflow): " + ", ".join(shown))
    return "\n".join(lines)
