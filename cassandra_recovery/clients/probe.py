"""Client-to-node health probe: a CQL OPTIONS request on a fresh connection, with a short timeout.

A fresh socket (not the driver's pool) keeps probes independent of the driver's own view of the
node, and OPTIONS needs no authentication. A frozen JVM still completes the TCP handshake (the
kernel does it) but never answers, which is exactly the case a short timeout must catch.
"""

from __future__ import annotations

import socket
import struct
import time

from cassandra_recovery.logic.probe_result import ProbeResult

# Native protocol v4 request header: version, flags, stream, opcode OPTIONS (0x05), body length 0.
_OPTIONS_FRAME = struct.pack(">BBhBI", 0x04, 0x00, 1, 0x05, 0)
_SUPPORTED = 0x06
_HEADER_LEN = 9


def probe_node(address: str, port: int = 9042, timeout_s: float = 0.5) -> ProbeResult:
    """Latency of one OPTIONS round trip, or the error (refused, timed out, bad reply)."""
    start = time.monotonic()
    deadline = start + timeout_s
    try:
        with socket.create_connection((address, port), timeout=timeout_s) as sock:
            sock.sendall(_OPTIONS_FRAME)
            header = b""
            while len(header) < _HEADER_LEN:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out")
                sock.settimeout(remaining)
                chunk = sock.recv(_HEADER_LEN - len(header))
                if not chunk:
                    raise ConnectionError("connection closed by node")
                header += chunk
    except (OSError, TimeoutError, ConnectionError) as e:
        reason = "timed out" if isinstance(e, (TimeoutError, socket.timeout)) else str(e) or type(e).__name__
        return ProbeResult(address, False, None, f"{type(e).__name__}: {reason}")
    latency = (time.monotonic() - start) * 1000
    opcode = header[4]
    if opcode != _SUPPORTED:
        return ProbeResult(address, False, latency, f"unexpected reply opcode 0x{opcode:02x}")
    return ProbeResult(address, True, latency)
