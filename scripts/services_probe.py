#!/usr/bin/env python3
"""Stdlib-only helpers for scripts/services.sh (no venv needed).

    services_probe.py freeport [N]           print N free TCP ports on 127.0.0.1 on one line
    services_probe.py mongo HOST:PORT         exit 0 if a MongoDB wire-protocol server answers ping with ok: 1
    services_probe.py kafka HOST:PORT         exit 0 if a Kafka broker answers a Metadata request listing a broker
    services_probe.py s3 HOST:PORT            exit 0 if an S3 endpoint answers ListBuckets (GET /) with 200
    services_probe.py wait KIND HOST:PORT SECONDS [PID]
                                              poll the probe until it succeeds; fail early if PID dies

The probes speak just enough of each wire protocol to prove the server is really serving requests,
not merely that a TCP port is open.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


# -- MongoDB: OP_MSG {ping: 1, $db: "admin"} -------------------------------------------------------------
def _bson_cstring(s: str) -> bytes:
    return s.encode() + b"\x00"


def _bson_doc(items: list[tuple[str, object]]) -> bytes:
    body = b""
    for k, v in items:
        if isinstance(v, int):
            body += b"\x10" + _bson_cstring(k) + struct.pack("<i", v)
        else:
            raw = str(v).encode() + b"\x00"
            body += b"\x02" + _bson_cstring(k) + struct.pack("<i", len(raw)) + raw
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def probe_mongo(addr: str, timeout: float = 2.0) -> bool:
    doc = _bson_doc([("ping", 1), ("$db", "admin")])
    payload = struct.pack("<I", 0) + b"\x00" + doc  # flagBits, section kind 0, body
    header = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013)  # OP_MSG
    with socket.create_connection(_split(addr), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(header + payload)
        length, _req, _resp, opcode = struct.unpack("<iiii", _recv_exact(s, 16))
        body = _recv_exact(s, length - 16)
    if opcode != 2013:
        return False
    reply = body[5:]  # flags + section kind
    # find "ok" as double (0x01) or int32 (0x10) and check it is 1
    i = reply.find(b"ok\x00")
    if i <= 0:
        return False
    kind = reply[i - 1]
    if kind == 0x01:
        return struct.unpack("<d", reply[i + 3 : i + 11])[0] == 1.0
    if kind == 0x10:
        return struct.unpack("<i", reply[i + 3 : i + 7])[0] == 1
    return False


# -- Kafka: Metadata v4 (all topics), expect >= 1 broker -------------------------------------------------
def probe_kafka(addr: str, timeout: float = 2.0) -> bool:
    client = b"hive-services-probe"
    header = struct.pack(">hhih", 3, 4, 7, len(client)) + client
    body = struct.pack(">i", -1) + b"\x00"  # topics = null (all), allow_auto_topic_creation = false
    msg = header + body
    with socket.create_connection(_split(addr), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(msg)) + msg)
        (length,) = struct.unpack(">i", _recv_exact(s, 4))
        resp = _recv_exact(s, length)
    correlation, _throttle, n_brokers = struct.unpack(">iii", resp[:12])
    return correlation == 7 and n_brokers >= 1


# -- S3: ListBuckets (anonymous), answered by SeaweedFS once its filer serves --------------------------------
def probe_s3(addr: str, timeout: float = 2.0) -> bool:
    import http.client

    conn = http.client.HTTPConnection(*_split(addr), timeout=timeout)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    return resp.status == 200 and b"ListAllMyBucketsResult" in body


PROBES = {"mongo": probe_mongo, "kafka": probe_kafka, "s3": probe_s3}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[0]
    if cmd == "freeport":
        print(" ".join(str(p) for p in free_ports(int(argv[1]) if len(argv) > 1 else 1)))
        return 0
    if cmd in PROBES:
        try:
            return 0 if PROBES[cmd](argv[1]) else 1
        except (OSError, struct.error, ValueError):
            return 1
    if cmd == "wait":
        kind, addr, seconds = argv[1], argv[2], float(argv[3])
        pid = int(argv[4]) if len(argv) > 4 else None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if PROBES[kind](addr):
                    return 0
            except (OSError, struct.error, ValueError):
                pass
            if pid is not None and not _alive(pid):
                print(f"process {pid} exited before {kind} at {addr} became ready", file=sys.stderr)
                return 3
            time.sleep(0.25)
        print(f"{kind} at {addr} not ready after {seconds:g}s", file=sys.stderr)
        return 1
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
