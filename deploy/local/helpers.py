#!/usr/bin/env python3
"""Small stdlib-only helpers for deploy/local/services.sh.

helpers.py freeport [--count N] [--prefer P ...] [--exclude P ...] [--min LO --max HI]
    Print N distinct TCP ports that are free on 127.0.0.1, one per line.  Preferred
    ports are taken first when free; otherwise the OS picks (port 0), or, with
    --min/--max, a random free port in that inclusive range.
helpers.py kafka-ping HOST:PORT [--timeout S]
    Send a real Kafka ApiVersions (v0) request; exit 0 if the broker answers
    with error code 0 and a non-empty API list, else print why and exit 1.
helpers.py kafka-brokers HOST:PORT [--timeout S] [--expect N]
    Print the node ids of the brokers HOST:PORT reports alive (a real Kafka Metadata
    request); with --expect, exit 1 unless there are exactly N.
helpers.py cluster-id
    Print a fresh 22-character KRaft cluster id (URL-safe base64 of a UUID, not starting with "-").
helpers.py es-base SERVICES_HOME [--create]
    Print the directory that holds the Elasticsearch files of a services home (see es_base);
    --create makes it, and the link to it, when it is relocated.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import socket
import stat
import struct
import sys
import uuid
from pathlib import Path

HOST = "127.0.0.1"


def _try_bind(port: int) -> socket.socket | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As the servers themselves bind (the JVM sets SO_REUSEADDR): a port whose old connections
    # linger in TIME_WAIT after a kill -9 is free for them, and the service keeps its port.
    # A port another process listens on still fails.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        s.listen(1)
    except OSError:
        s.close()
        return None
    return s


def freeport(
    count: int, prefer: list[int], exclude: set[int], lo: int | None, hi: int | None
) -> list[int]:
    # Keep every chosen port bound until all are chosen, so that they are distinct.
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for p in prefer:
            if len(ports) >= count:
                break
            if p in exclude or p in ports or (lo is not None and not lo <= p <= hi):  # type: ignore[operator]
                continue
            s = _try_bind(p)
            if s is not None:
                held.append(s)
                ports.append(p)
        if lo is not None:
            candidates = [p for p in range(lo, hi + 1) if p not in exclude and p not in ports]  # type: ignore[operator]
            random.shuffle(candidates)
            for p in candidates:
                if len(ports) >= count:
                    break
                s = _try_bind(p)
                if s is not None:
                    held.append(s)
                    ports.append(p)
        else:
            tries = 0
            while len(ports) < count and tries < 100:
                tries += 1
                s = _try_bind(0)
                if s is None:
                    continue
                p = s.getsockname()[1]
                if p in exclude or p in ports:
                    s.close()
                    continue
                held.append(s)
                ports.append(p)
    finally:
        for s in held:
            s.close()
    if len(ports) < count:
        raise SystemExit(f"freeport: could only find {len(ports)} of {count} free ports")
    return ports


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def _kafka_request(address: str, api_key: int, version: int, body: bytes,
                   timeout: float) -> bytes:
    """One request (header v1) to one broker; returns the response after its correlation id.
    Raises OSError or ConnectionError."""
    host, _, port = address.rpartition(":")
    client_id = b"newsmon-services-probe"
    header = struct.pack(">hhih", api_key, version, 4242, len(client_id)) + client_id
    with socket.create_connection((host or HOST, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        (size,) = struct.unpack(">i", _recv_exact(s, 4))
        data = _recv_exact(s, size)
    (corr,) = struct.unpack(">i", data[:4])
    if corr != 4242:
        raise ConnectionError(f"correlation id {corr} in the answer, not 4242")
    return data[4:]


def kafka_ping(address: str, timeout: float) -> int:
    # ApiVersions (api key 18) v0 has an empty body, and every broker version answers it.
    try:
        data = _kafka_request(address, 18, 0, b"", timeout)
    except (OSError, ConnectionError) as exc:
        print(f"kafka-ping {address}: {exc}", file=sys.stderr)
        return 1
    err, n_apis = struct.unpack(">hi", data[:6])
    if err != 0 or n_apis <= 0:
        print(f"kafka-ping {address}: error_code={err} apis={n_apis}", file=sys.stderr)
        return 1
    return 0


def kafka_brokers(address: str, timeout: float) -> list[int]:
    """The node ids of the brokers that ``address`` reports alive (registered, not fenced),
    from a Metadata request for no topic. Version 4: the oldest Kafka 4 still serves
    (KIP-896 removed 0-3), and the newest without the flexible encoding."""
    data = _kafka_request(address, 3, 4, struct.pack(">ib", 0, 0), timeout)
    # throttle_time_ms, then the brokers: node_id, host, port, rack (nullable).
    (count,) = struct.unpack(">i", data[4:8])
    pos, ids = 8, []
    for _ in range(count):
        node_id, host_len = struct.unpack(">ih", data[pos:pos + 6])
        pos += 6 + host_len + 4
        (rack_len,) = struct.unpack(">h", data[pos:pos + 2])
        pos += 2 + max(rack_len, 0)
        ids.append(node_id)
    return sorted(ids)


#: Where Elasticsearch files go when the services home is in a directory others cannot enter.
# A fixed path on purpose (the same home maps to the same place on every start); it is
# checked to be our own directory, not a symlink, before use (es_base).
RELOCATED = Path("/var/tmp/newsmon-es")  # noqa: S108


def others_can_enter(path: Path) -> bool:
    """Every directory from / down to ``path`` is searchable by others (mode o+x)."""
    for part in (path, *path.parents):
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def es_base(services_home: Path, *, create: bool = False) -> Path:
    """The directory holding the Elasticsearch files (distribution, config, data, logs) of a
    services home: ``<home>/elasticsearch``, unless that is out of the Elasticsearch user's
    reach.

    Elasticsearch refuses to run as root, so as root it runs as another user (newsmon-es),
    which must be able to reach its files. A clone in a directory only root may enter
    (``mktemp -d``, /root of mode 700) would stop it; its files then live in
    ``/var/tmp/newsmon-es/<hash of the home>``, with ``<home>/elasticsearch`` a link to it.
    The one definition for services.sh and for the tests that start an Elasticsearch of their
    own; the path returned has no link in it, so the other user never passes the private
    directory on its way.
    """
    home = services_home.absolute()
    link = home / "elasticsearch"
    if link.is_symlink():
        return link.resolve()  # placed under RELOCATED by an earlier start
    if os.getuid() != 0 or link.is_dir() or others_can_enter(home):
        return link
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]  # as services.sh always did
    target = RELOCATED / digest
    if create:
        RELOCATED.mkdir(exist_ok=True)
        if RELOCATED.is_symlink() or RELOCATED.stat().st_uid != os.getuid():
            raise OSError(f"{RELOCATED} is not a directory of ours")
        RELOCATED.chmod(0o755)
        target.mkdir(exist_ok=True)
        target.chmod(0o755)
        home.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    return target


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="helpers.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    fp = sub.add_parser("freeport")
    fp.add_argument("--count", type=int, default=1)
    fp.add_argument("--prefer", type=int, nargs="*", default=[])
    fp.add_argument("--exclude", type=int, nargs="*", default=[])
    fp.add_argument("--min", type=int)
    fp.add_argument("--max", type=int)
    kp = sub.add_parser("kafka-ping")
    kp.add_argument("address")
    kp.add_argument("--timeout", type=float, default=3.0)
    kb = sub.add_parser("kafka-brokers")
    kb.add_argument("address")
    kb.add_argument("--timeout", type=float, default=3.0)
    kb.add_argument("--expect", type=int, help="exit 1 unless exactly this many are alive")
    sub.add_parser("cluster-id")
    ep = sub.add_parser("es-base")
    ep.add_argument("home", type=Path)
    ep.add_argument("--create", action="store_true")
    a = ap.parse_args(argv)
    if a.cmd == "es-base":
        try:
            print(es_base(a.home, create=a.create))
        except OSError as exc:
            print(f"services: {exc}", file=sys.stderr)
            return 1
        return 0
    if a.cmd == "freeport":
        if (a.min is None) != (a.max is None):
            ap.error("--min and --max go together")
        for p in freeport(a.count, a.prefer, set(a.exclude), a.min, a.max):
            print(p)
        return 0
    if a.cmd == "kafka-ping":
        return kafka_ping(a.address, a.timeout)
    if a.cmd == "kafka-brokers":
        try:
            ids = kafka_brokers(a.address, a.timeout)
        except (OSError, ConnectionError, struct.error) as exc:
            print(f"kafka-brokers {a.address}: {exc}", file=sys.stderr)
            return 1
        print(" ".join(map(str, ids)))
        if a.expect is not None and len(ids) != a.expect:
            print(f"kafka-brokers {a.address}: {len(ids)} alive, not {a.expect}", file=sys.stderr)
            return 1
        return 0
    if a.cmd == "cluster-id":
        while (
            True
        ):  # like Kafka's Uuid.randomUuid(): never starts with "-" (it would read as an option)
            cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not cid.startswith("-"):
                print(cid)
                return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
