"""Real network partitions between groups of lab nodes, every process alive: nftables rules on the socket owner.

Cassandra 5.0 does not bind its outgoing node-to-node connections to its own address, so on loopback every
connection leaves from 127.0.0.1 and a rule on node addresses matches nothing. Each lab node runs as its own
user, so a rule matching the owner of the socket (`meta skuid`), the peer's address and the storage port drops
exactly the connections that node opens to the other group. Replies on connections the other side opened go to
127.0.0.1 and pass: a one-way cut blocks only what A opens to B. Root (clients, nodetool, the tool) is never
matched, so both sides stay reachable from the client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from cassandra_recovery.clients.child_env import child_env
from cassandra_recovery.errors import LabError, ToolMissingError

TABLE = "cassandra_recovery_lab"  # one nftables table (inet family) holds every cut of the lab


def table_for(address_offset: int) -> str:
    """The lab's own table: a second lab (shifted addresses) never removes the first one's cuts."""
    return TABLE if address_offset == 0 else f"{TABLE}_{address_offset}"


STORAGE_PORT = 7000


@dataclass(frozen=True)
class Cut:
    """Node-to-node traffic from `a` to `b` dropped (and from `b` to `a` unless one_way); node names."""

    a: tuple[str, ...]
    b: tuple[str, ...]
    one_way: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Cut:
        a, b = d.get("a"), d.get("b")
        if not isinstance(a, list | tuple) or not isinstance(b, list | tuple):
            raise ValueError(f"a cut needs two node lists, got {d!r}")
        return cls(tuple(str(x) for x in a), tuple(str(x) for x in b), bool(d.get("one_way", False)))

    def describe(self) -> str:
        arrow = "->" if self.one_way else "<->"
        return f"{','.join(self.a)} {arrow} {','.join(self.b)}"


def resolve_group(ref: str, nodes: Sequence[tuple[str, str, str]]) -> tuple[str, ...]:
    """A group named by a datacenter (`dc2`) or by nodes (`node1,node2` or addresses): node names.
    `nodes` is (name, address, datacenter) for every lab node."""
    by_dc = [name for name, _, dc in nodes if dc == ref]
    if by_dc:
        return tuple(by_dc)
    out: list[str] = []
    for part in (p.strip() for p in ref.split(",")):
        match = [name for name, addr, _ in nodes if part in (name, addr)]
        if not part or not match:
            dcs = sorted({dc for _, _, dc in nodes})
            raise ValueError(f"{part!r} is neither a datacenter ({', '.join(dcs)}) nor a lab node")
        if match[0] not in out:
            out.append(match[0])
    return tuple(out)


def check_cut(a: Sequence[str], b: Sequence[str]) -> None:
    if not a or not b:
        raise ValueError("a split needs two non-empty groups")
    if both := sorted(set(a) & set(b)):
        raise ValueError(f"{', '.join(both)} cannot be on both sides of a split")


def ruleset(cuts: Sequence[Cut], uid_of: Mapping[str, int], address_of: Mapping[str, str], table: str = TABLE) -> str:
    """The whole nftables script for the lab's cuts: the table is replaced atomically (`nft -f`)."""
    rules: list[str] = []
    for cut in cuts:
        directions = [(cut.a, cut.b)] if cut.one_way else [(cut.a, cut.b), (cut.b, cut.a)]
        for src, dst in directions:
            addrs = ", ".join(address_of[n] for n in dst)
            for n in src:
                rules.append(
                    f"    meta skuid {uid_of[n]} ip daddr {{ {addrs} }} tcp dport {STORAGE_PORT} counter drop"
                    f'  comment "{n} to {",".join(dst)}"'
                )
    body = "\n".join(rules)
    # `table ...` then `delete table ...` makes the replacement work whether or not the table exists.
    return (
        f"table inet {table}\ndelete table inet {table}\n"
        f"table inet {table} {{\n  chain output {{\n    type filter hook output priority 0; policy accept;\n"
        f"{body}\n  }}\n}}\n"
    )


def _nft_path() -> str | None:
    """nft is in /usr/sbin, which a non-login PATH may leave out."""
    return shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else None)


def _nft() -> str:
    nft = _nft_path()
    if nft is None:
        raise ToolMissingError("nft is missing: `lab split` needs nftables; run bin/install (apt-get install nftables)")
    return nft


def _run(argv: list[str], script: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=30, env=child_env())
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        raise LabError(f"`lab split` needs CAP_NET_ADMIN (run as root): {' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def apply(cuts: Sequence[Cut], uid_of: Mapping[str, int], address_of: Mapping[str, str], table: str = TABLE) -> None:
    """Install exactly these cuts (none: remove the table)."""
    nft = _nft()
    if not cuts:
        remove(table)
        return
    proc = _run([nft, "-f", "-"], ruleset(cuts, uid_of, address_of, table))
    if proc.returncode != 0:
        raise LabError(f"nft refused the split rules: {proc.stderr.strip()}")


def remove(table: str = TABLE) -> bool:
    """Remove every cut; False when there was none. Quiet when nft is not installed (nothing to remove)."""
    nft = _nft_path()
    if nft is None:
        return False
    proc = _run([nft, "delete", "table", "inet", table])
    if proc.returncode != 0 and "No such file or directory" not in proc.stderr:
        raise LabError(f"nft could not remove the split rules: {proc.stderr.strip()}")
    return proc.returncode == 0


def dropped_packets(table: str = TABLE) -> dict[str, int]:
    """Packets dropped per rule comment ("node1 to node3,node4"), from the rule counters; {} without a table."""
    nft = _nft_path()
    if nft is None:
        return {}
    proc = _run([nft, "-j", "list", "table", "inet", table])
    if proc.returncode != 0:
        return {}
    out: dict[str, int] = {}
    for item in json.loads(proc.stdout).get("nftables", []):
        rule = item.get("rule") if isinstance(item, dict) else None
        if not rule:
            continue
        packets = sum(int(e["counter"]["packets"]) for e in rule.get("expr", []) if "counter" in e)
        out[str(rule.get("comment", rule.get("handle")))] = packets
    return out
