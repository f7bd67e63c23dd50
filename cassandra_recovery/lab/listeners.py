"""Who listens on a local TCP port, from /proc (Linux): the lab checks that the process behind a port is the one it
started before it sends that port a credential or signals a pid it read from a file."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cassandra_recovery.errors import ParseError

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


@dataclass(frozen=True)
class Listener:
    address: str  # as Python prints it: 127.0.0.1, 0.0.0.0, ::1
    port: int
    inode: int
    uid: int


def _address(hex_addr: str) -> str:
    """/proc/net/tcp[6] addresses: the kernel's 32-bit words, each in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_proc_net_tcp(text: str) -> list[Listener]:
    """The listening sockets of a /proc/net/tcp or /proc/net/tcp6 file."""
    lines = text.splitlines()
    if not lines or not lines[0].split()[:2] == ["sl", "local_address"]:
        raise ParseError("/proc/net/tcp", "no header line", text)
    out = []
    for line in lines[1:]:
        cols = line.split()
        if len(cols) < 10:
            raise ParseError("/proc/net/tcp", f"short line: {line!r}", text)
        if cols[3] != _LISTEN:
            continue
        host, _, port = cols[1].partition(":")
        out.append(Listener(_address(host), int(port, 16), int(cols[9]), int(cols[7])))
    return out


def listening_inodes(host: str, port: int, proc: Path = Path("/proc")) -> set[int]:
    """Sockets listening on host:port, or on every address at that port (0.0.0.0, ::)."""
    wanted = {host, "0.0.0.0", "::"}  # noqa: S104 - matched, not bound
    found: set[int] = set()
    for name in ("tcp", "tcp6"):
        path = proc / "net" / name
        if path.exists():
            found |= {s.inode for s in parse_proc_net_tcp(path.read_text()) if s.port == port and s.address in wanted}
    return found


def pids_holding(inodes: set[int], proc: Path = Path("/proc")) -> set[int]:
    """The processes with one of these sockets open (every process's fds are readable as root)."""
    targets = {f"socket:[{i}]" for i in inodes}
    pids: set[int] = set()
    if not targets:
        return pids
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    pids.add(int(entry.name))
                    break
            except OSError:
                continue
    return pids


@dataclass(frozen=True)
class ProcStat:
    pid: int
    session: int
    start_ticks: int  # since boot: with the pid, names one process for good (pids are reused)


def proc_stat(pid: int, proc: Path = Path("/proc")) -> ProcStat | None:
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces or parentheses: fields start after the last ')'
    fields = text[text.rindex(")") + 2 :].split()
    return ProcStat(pid, int(fields[3]), int(fields[19]))
