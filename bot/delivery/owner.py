"""Who claims outbox rows: a worker id that tells, on the same host, whether its process is gone.

A worker id is `<host>/<host key>:<pid>:<process start>:<random>`. The host key stands for
one place where process ids are unique (host name, boot, PID namespace), so a worker that
finds claims under its own host key can ask the kernel whether the claiming process still
runs: a process id that is gone, or now belongs to a process started at another time, is a
worker that died. Its claims can be released at once instead of waiting out their lease.
Elsewhere (another host, another container, no /proc) nothing is assumed: the lease decides.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Owner:
    """A claimer as its worker id describes it."""

    host: str  # "<host name>/<host key>", or "" when the process cannot be checked
    pid: int
    started: str

    @property
    def checkable(self) -> bool:
        return bool(self.host)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def process_start(pid: int, proc: Path = PROC) -> str:
    """When process `pid` started (clock ticks since boot, from /proc), or "" when none runs."""
    stat = _read(proc / str(pid) / "stat")
    if not stat:
        return ""
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def host_key(hostname: str, proc: Path = PROC) -> str:
    """`<host name>/<key>` for this host, boot and PID namespace, or "" without /proc."""
    boot = _read(proc / "sys" / "kernel" / "random" / "boot_id")
    try:
        namespace = os.readlink(proc / "self" / "ns" / "pid")
    except OSError:
        namespace = ""
    if not boot or not namespace:
        return ""
    digest = hashlib.sha256(f"{hostname}|{boot}|{namespace}".encode()).hexdigest()[:10]
    return f"{hostname[:24]}/{digest}"


def new_worker_id(proc: Path = PROC) -> str:
    """This process's worker id (at most 64 characters, the width of `claimed_by`)."""
    pid = os.getpid()
    host = host_key(socket.gethostname(), proc) or socket.gethostname()[:24]
    return f"{host}:{pid}:{process_start(pid, proc) or '-'}:{uuid.uuid4().hex[:6]}"


def parse(worker_id: str) -> Owner | None:
    """The owner a worker id names, or None for ids of another form."""
    parts = worker_id.split(":")
    if len(parts) != 4 or "/" not in parts[0] or not parts[1].isdigit():
        return None
    return Owner(host=parts[0], pid=int(parts[1]), started=parts[2])


def is_gone(worker_id: str, *, me: str, proc: Path = PROC) -> bool:
    """Whether the process behind `worker_id` has certainly ended.

    Only a claimer under the same host key as `me` can be checked; any other is assumed
    alive (its lease still protects it).
    """
    owner, mine = parse(worker_id), parse(me)
    if owner is None or mine is None or not mine.checkable or owner.host != mine.host:
        return False
    if worker_id == me or owner.started == "-":  # "-": its start time was unknown
        return False
    started = process_start(owner.pid, proc)
    return started == "" or started != owner.started
