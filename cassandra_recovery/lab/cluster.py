"""The lab: a real multi-node Cassandra 5.0 cluster on 127.0.0.2.. run from the Maven runtime."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.clients.probe import probe_node
from cassandra_recovery.errors import CommandError, ConfigError, LabError, ParseError
from cassandra_recovery.lab import jmx_auth, layout, node_files, procs, users
from cassandra_recovery.lab import split as split_mod
from cassandra_recovery.lab.logs import LogWatcher, read_node_log
from cassandra_recovery.lab.registry import LabState, lab_cluster_config, load_state, save_state, state_path
from cassandra_recovery.lab.runtime import build_nodetool_archive, ensure_runtime, existing_archive
from cassandra_recovery.logic.durations import parse_duration_ms
from cassandra_recovery.parsers.status import StatusRow, parse_status
from cassandra_recovery.progress import counted
from cassandra_recovery.settings import LabConfig

log = logging.getLogger(__name__)
CQL_MARKER = r"Starting listening for CQL clients on /{addr}:9042"
START_TIMEOUT_S = 240.0
SEEN_TIMEOUT_S = 120.0
Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeStatus:
    name: str
    address: str
    process: str  # running | frozen | stopped
    partitioned: bool
    state: str  # UN/DN/UJ... as seen by a live peer, or "?" when no peer can tell
    observer: str | None
    pid: int | None

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


class Lab:
    def __init__(self, config: LabConfig, progress: Progress | None = None):
        self.config = config
        self.base = config.base_dir
        self.progress = progress or (lambda msg: log.info("%s", msg))
        self._nft_table = split_mod.table_for(config.address_offset)

    # state -------------------------------------------------------------------------------------
    def state(self) -> LabState:
        st = load_state(self.config)
        if st is None:
            raise LabError(
                f"the lab is not set up ({state_path(self.config)} missing); run `cassandra-recovery lab up`"
            )
        return st

    def node(self, ref: str) -> layout.NodeSpec:
        return layout.find_node(self.state().spec, ref)

    def node_dir(self, node: layout.NodeSpec) -> Path:
        return self.base / "nodes" / node.name

    def nodetool(self) -> Nodetool:
        return Nodetool(lab_cluster_config(self.config))

    def process(self, node: layout.NodeSpec) -> procs.LabProcess | None:
        return procs.process_for(self.base, self.config.user_prefix, self.node_dir(node))

    # up / down ---------------------------------------------------------------------------------
    def up(self, nodes: int = 3, tokens: int = 1, hint_window: str = "3h", dcs: int = 1) -> LabState:
        """`nodes` per datacenter; several datacenters with `dcs` > 1."""
        try:
            parse_duration_ms(hint_window)
            spec = layout.plan_lab(
                nodes, tokens, hint_window, self.config.user_prefix, dcs=dcs, offset=self.config.address_offset
            )
        except ValueError as e:
            raise ConfigError(str(e)) from e
        existing = load_state(self.config)
        if existing is not None and procs.lab_processes(self.base, self.config.user_prefix):
            if existing.spec != spec:
                n_dcs = len(layout.datacenters(existing.spec))
                raise LabError(
                    f"the lab is already up with {len(existing.spec.nodes)} nodes, "
                    f"{len(existing.spec.nodes[0].tokens)} token(s) per node, {n_dcs} datacenter(s), hint window "
                    f"{existing.spec.hint_window}; run `cassandra-recovery lab down` first"
                )
            spec = existing.spec
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)  # noqa: S103 - node users traverse it; nothing in it is writable by them
        self.progress(f"runtime: Cassandra {self.config.cassandra_version} (Maven Central, cached after first run)")
        rt = ensure_runtime(self.base, self.config.cassandra_version)
        state = LabState(
            spec=spec,
            java=rt.java,
            lib_dir=str(rt.lib_dir),
            tools_conf=str(rt.tools_conf),
            version=rt.version,
            partitioned=existing.partitioned if existing and existing.spec == spec else [],
            gossip_restarted=existing.gossip_restarted if existing and existing.spec == spec else [],
            cuts=existing.cuts if existing and existing.spec == spec else [],
        )
        save_state(self.config, state)
        seed, *rest = spec.nodes
        started = time.monotonic()
        total = len(spec.nodes)
        self._start(state, seed)
        counted(self.progress, "lab up: nodes ready for CQL", 1, total, line="")  # each node says so itself
        with ThreadPoolExecutor(max_workers=max(1, len(rest))) as pool:
            for i, f in enumerate([pool.submit(self._start, state, n) for n in rest], start=2):
                f.result()
                counted(self.progress, "lab up: nodes ready for CQL", i, total, line="")
        self.wait_all_up(timeout_s=SEEN_TIMEOUT_S)
        self.progress(f"lab up: {len(spec.nodes)} nodes UN in {time.monotonic() - started:.1f}s")
        if existing_archive(rt.lib_dir) is None:
            t0 = time.monotonic()
            auth = ["-u", jmx_auth.JMX_USER, "-pwf", str(jmx_auth.client_file(self.config))]
            if build_nodetool_archive(rt.java, rt.lib_dir, rt.tools_conf, "127.0.0.1", seed.jmx_port, auth):
                self.progress(f"nodetool: class-data archive built in {time.monotonic() - t0:.1f}s (once per runtime)")
        return state

    def down(self, keep_data: bool = False) -> int:
        """Stop every lab JVM (frozen ones too) and remove any network cut; returns how many were stopped.
        Idempotent."""
        if split_mod.remove(self._nft_table):
            self.progress("network cuts removed")
        st = load_state(self.config)
        if st is not None and st.cuts:
            st.cuts = []
            save_state(self.config, st)
        found = procs.lab_processes(self.base, self.config.user_prefix)
        for p in found:
            procs.signal_pid(p.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
            procs.signal_pid(p.pid, signal.SIGTERM)
        left = procs.wait_gone([p.pid for p in found], timeout_s=30)
        for pid in left:
            procs.signal_pid(pid, signal.SIGKILL)
        if procs.wait_gone(left, timeout_s=15):
            raise LabError(f"processes survived SIGKILL: {left}")
        if not keep_data:
            shutil.rmtree(self.base / "nodes", ignore_errors=True)
            state_path(self.config).unlink(missing_ok=True)
        self.progress(f"lab down: stopped {len(found)} node process(es)" + ("" if keep_data else ", data removed"))
        return len(found)

    # one node ----------------------------------------------------------------------------------
    def _node_owner(self, node: layout.NodeSpec) -> node_files.Owner:
        if users.can_switch_users():
            return node_files.Owner(*users.ensure_user(node.user))
        return node_files.me()

    def _prepare(self, state: LabState, node: layout.NodeSpec) -> Path:
        nd = self.node_dir(node)
        password = jmx_auth.lab_jmx_password(self.config)
        files = node_files.NodeFiles(
            conf={
                "cassandra.yaml": layout.cassandra_yaml(state.spec, node, nd),
                "cassandra-rackdc.properties": layout.rackdc_properties(node),
                "logback.xml": layout.logback_xml(nd / "logs"),
                jmx_auth.NODE_ACCESS_FILE: jmx_auth.access_file_text(),
            },
            secret={jmx_auth.NODE_PASSWORD_FILE: jmx_auth.password_line(password)},
        )
        return node_files.prepare_node_dir(self.base, node.name, files, self._node_owner(node))

    def _start(self, state: LabState, node: layout.NodeSpec) -> None:
        if (p := self.process(node)) is not None:
            if p.frozen:
                raise LabError(f"{node.name} is frozen; run `lab thaw {node.name}`")
            self.progress(f"{node.name} already running (pid {p.pid})")
            return
        nd = self._prepare(state, node)
        self._forget_gossip_restart(node)
        watcher = LogWatcher(nd / "logs" / "system.log")
        argv = layout.daemon_argv(state.java, Path(state.lib_dir), node, nd, self.config.heap)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "MALLOC_ARENA_MAX": "4"}
        as_user = {"user": node.user, "group": node.user, "extra_groups": []} if users.can_switch_users() else {}
        t0 = time.monotonic()
        self.progress(f"starting {node.name} on {node.address} (JMX {node.jmx_port}, user {node.user})")
        with os.fdopen(node_files.open_node_stdout(self.base, node.name), "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=nd / "logs",  # the node user's: where a heap dump can be written
                env=env,
                start_new_session=True,
                **as_user,
            )  # type: ignore[call-overload]
        watcher.wait_for(
            CQL_MARKER.format(addr=node.address.replace(".", r"\.")),
            START_TIMEOUT_S,
            alive=lambda: proc.poll() is None,
            what=f"{node.name} did not start",
        )
        self._wait_cql(node, alive=lambda: proc.poll() is None, watcher=watcher)
        self.progress(f"{node.name} ready for CQL in {time.monotonic() - t0:.1f}s")

    def _wait_cql(self, node: layout.NodeSpec, alive: Callable[[], bool], watcher: LogWatcher) -> None:
        deadline = time.monotonic() + 60
        while True:
            res = probe_node(node.address, timeout_s=2.0)
            if res.ok:
                return
            if not alive() or time.monotonic() > deadline:
                raise LabError(f"{node.name} does not answer CQL ({res.error})\n{watcher.quote()}")
            time.sleep(0.25)

    def start(self, ref: str) -> None:
        node = self.node(ref)
        self._start(self.state(), node)
        self.wait_seen(node, up=True)

    def stop(self, ref: str) -> None:
        """Clean stop (SIGTERM, SIGKILL after 30 s); the data stays."""
        node = self.node(ref)
        p = self.process(node)
        if p is None:
            self.progress(f"{node.name} is not running")
            return
        procs.signal_pid(p.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        procs.signal_pid(p.pid, signal.SIGTERM)
        if procs.wait_gone([p.pid], 30):
            procs.signal_pid(p.pid, signal.SIGKILL)
            procs.wait_gone([p.pid], 15)
        self.progress(f"{node.name} stopped (pid {p.pid})")

    def replace(self, dead_ref: str) -> layout.NodeSpec:
        """Start a fresh node in a dead node's place (replace_address_first_boot, bootstrap, not a seed);
        the lab's spec then lists the new node instead of the dead one. The dead node must not be running."""
        st = self.state()
        dead = self.node(dead_ref)
        if self.process(dead) is not None:
            raise LabError(f"{dead.name} is still running: only a dead node is replaced (`lab kill {dead.name}`)")
        if dead.seed:
            raise LabError(f"{dead.name} is a seed: replacing a seed is not supported by the lab")
        new = layout.replacement_for(st.spec, dead, self.config.user_prefix, self.config.address_offset)
        st.spec = replace(st.spec, nodes=tuple(n for n in st.spec.nodes if n.name != dead.name) + (new,))
        save_state(self.config, st)
        self.progress(f"replacing {dead.name} ({dead.address}) with {new.name} ({new.address}): bootstrapping")
        t0 = time.monotonic()
        self._start(st, new)
        self.wait_seen(new, up=True)
        self.progress(f"{new.name} replaced {dead.name} in {time.monotonic() - t0:.1f}s")
        return new

    def _forget_gossip_restart(self, node: layout.NodeSpec) -> None:
        st = self.state()
        if node.name in st.gossip_restarted:
            st.gossip_restarted.remove(node.name)
            save_state(self.config, st)

    def kill(self, ref: str) -> None:
        node = self.node(ref)
        p = self.process(node)
        if p is None:
            self.progress(f"{node.name} is not running")
            return
        procs.signal_pid(p.pid, signal.SIGKILL)
        procs.wait_gone([p.pid], 15)
        self.progress(f"{node.name} killed (pid {p.pid})")

    def freeze(self, ref: str) -> None:
        node = self.node(ref)
        p = self._require_process(node)
        procs.signal_pid(p.pid, signal.SIGSTOP)
        # Signal delivery is asynchronous: return only once every thread is stopped.
        if not procs.wait_state(p.pid, stopped=True, timeout_s=10):
            raise LabError(f"{node.name} (pid {p.pid}) did not stop after SIGSTOP")
        self.progress(f"{node.name} frozen (SIGSTOP pid {p.pid})")

    def thaw(self, ref: str, wait: bool = True) -> None:
        node = self.node(ref)
        p = self._require_process(node)
        procs.signal_pid(p.pid, signal.SIGCONT)
        procs.wait_state(p.pid, stopped=False, timeout_s=10)
        self.progress(f"{node.name} thawed (SIGCONT pid {p.pid})")
        if wait and node.name not in self.state().partitioned:
            self.wait_seen(node, up=True)

    def partition(self, ref: str) -> None:
        """Gossip and native transport off, process alive: peers see it DN, clients cannot reach it."""
        node = self.node(ref)
        self._require_process(node, running=True)
        nt = self.nodetool()
        nt.run(node.name, "disablebinary")
        nt.run(node.name, "disablegossip")
        st = self.state()
        if node.name not in st.partitioned:
            st.partitioned.append(node.name)
            save_state(self.config, st)
        self.progress(f"{node.name} partitioned (gossip and native transport disabled)")

    def heal(self, ref: str, wait: bool = True) -> None:
        node = self.node(ref)
        self._require_process(node, running=True)
        nt = self.nodetool()
        nt.run(node.name, "enablegossip")
        nt.run(node.name, "enablebinary")
        st = self.state()
        if node.name in st.partitioned:
            st.partitioned.remove(node.name)
        if node.name not in st.gossip_restarted:
            st.gossip_restarted.append(node.name)
        save_state(self.config, st)
        self.progress(f"{node.name} healed (gossip and native transport enabled)")
        if wait:
            self.wait_seen(node, up=True)

    # network cuts ------------------------------------------------------------------------------
    def split(self, group_a: str, group_b: str, one_way: bool = False) -> split_mod.Cut:
        """Drop node-to-node traffic between two groups (a datacenter or a list of nodes), both ways or only
        what A opens to B; every process stays alive and reachable from clients."""
        st = self.state()
        nodes = [(n.name, n.address, n.datacenter) for n in st.spec.nodes]
        try:
            a, b = split_mod.resolve_group(group_a, nodes), split_mod.resolve_group(group_b, nodes)
            split_mod.check_cut(a, b)
        except ValueError as e:
            raise ConfigError(str(e)) from e
        if not users.can_switch_users():
            raise LabError("`lab split` needs the nodes to run as their own users and CAP_NET_ADMIN: run as root")
        cut = split_mod.Cut(a, b, one_way)
        cuts = [*(split_mod.Cut.from_dict(c) for c in st.cuts), cut]
        self._apply_cuts(st, cuts)
        self.progress(f"split {cut.describe()} (node-to-node traffic dropped, processes alive)")
        return cut

    def unsplit(self) -> int:
        """Remove every cut; returns how many there were."""
        st = self.state()
        n = len(st.cuts)
        self._apply_cuts(st, [])
        self.progress(f"unsplit: {n} cut(s) removed")
        return n

    def cuts(self) -> list[split_mod.Cut]:
        st = load_state(self.config)
        return [split_mod.Cut.from_dict(c) for c in st.cuts] if st else []

    def _apply_cuts(self, st: LabState, cuts: list[split_mod.Cut]) -> None:
        uid_of = {n.name: users.ensure_user(n.user)[0] for n in st.spec.nodes}
        address_of = {n.name: n.address for n in st.spec.nodes}
        split_mod.apply(cuts, uid_of, address_of, self._nft_table)
        st.cuts = [c.as_dict() for c in cuts]
        save_state(self.config, st)

    def views(self) -> dict[str, dict[str, str]]:
        """Each running node's own `nodetool status`: observer name -> {address: UN/DN/..}; a node that cannot
        answer (frozen, stopped, nodetool failing) is left out."""
        from cassandra_recovery.detection.observe import status_views

        return status_views(lab_cluster_config(self.config), [n.name for n in self.observers()], timeout_s=60)

    def _require_process(self, node: layout.NodeSpec, running: bool = False) -> procs.LabProcess:
        p = self.process(node)
        if p is None:
            raise LabError(f"{node.name} is not running; run `cassandra-recovery lab start {node.name}`")
        if running and p.frozen:
            raise LabError(f"{node.name} is frozen; run `cassandra-recovery lab thaw {node.name}` first")
        return p

    # observation -------------------------------------------------------------------------------
    def observers(self, exclude: str | None = None) -> list[layout.NodeSpec]:
        """Nodes able to report a view of the ring: running, not frozen, not partitioned."""
        st = self.state()
        running = {p.node_dir: p for p in procs.lab_processes(self.base, self.config.user_prefix)}
        out = []
        for n in st.spec.nodes:
            p = running.get(self.node_dir(n).resolve())
            if p and not p.frozen and n.name not in st.partitioned and n.name != exclude:
                out.append(n)
        return out

    def ring_view(self, exclude: str | None = None) -> tuple[str | None, dict[str, StatusRow]]:
        """`nodetool status` from the first live observer: (observer name, rows by address)."""
        nt = self.nodetool()
        for obs in self.observers(exclude):
            try:
                rows = parse_status(nt.output(obs.name, "status", timeout_s=60))
            except (CommandError, ParseError) as e:
                log.warning("status from %s failed: %s", obs.name, e)
                continue
            return obs.name, {r.address: r for r in rows}
        return None, {}

    def status(self) -> list[NodeStatus]:
        st = self.state()
        running = {p.node_dir: p for p in procs.lab_processes(self.base, self.config.user_prefix)}
        observer, view = self.ring_view()
        out = []
        for n in st.spec.nodes:
            p = running.get(self.node_dir(n).resolve())
            process = "stopped" if p is None else ("frozen" if p.frozen else "running")
            row = view.get(n.address)
            out.append(
                NodeStatus(
                    n.name,
                    n.address,
                    process,
                    n.name in st.partitioned,
                    row.code if row else "?",
                    observer,
                    p.pid if p else None,
                )
            )
        return out

    def wait_seen(self, node: layout.NodeSpec, up: bool, timeout_s: float = SEEN_TIMEOUT_S) -> None:
        """Until every other live node sees `node` UN (up) or DN (down), by its own `nodetool status`."""
        want = "UN" if up else "DN"
        deadline = time.monotonic() + timeout_s
        nt = self.nodetool()
        last: dict[str, str] = {}
        while True:
            observers = self.observers(exclude=node.name)
            for obs in observers:
                try:
                    rows = {r.address: r for r in parse_status(nt.output(obs.name, "status", timeout_s=60))}
                    last[obs.name] = rows[node.address].code if node.address in rows else "absent"
                except (CommandError, ParseError) as e:
                    last[obs.name] = f"error: {e}".splitlines()[0]
            if observers and all(last.get(o.name) == want for o in observers):
                self.progress(f"{node.name} seen {want} by {', '.join(o.name for o in observers)}")
                return
            if time.monotonic() > deadline:
                stuck = [o for o in observers if last.get(o.name) != want]
                raise LabError(
                    f"{node.name} not seen {want} within {timeout_s:.0f}s; views: {last}\n"
                    + "\n".join(self._gossip_evidence(o, node) for o in stuck)
                )
            time.sleep(1)

    def _gossip_evidence(self, observer: layout.NodeSpec, node: layout.NodeSpec) -> str:
        """Why an observer does not convict: its phi for the node and its own gossip/FD warnings."""
        try:
            fd = self.nodetool().output(observer.name, "failuredetector", timeout_s=60)
            phi = next((ln.strip() for ln in fd.splitlines() if node.address in ln), "no phi row")
        except CommandError as e:
            phi = f"failuredetector failed: {e}".splitlines()[0]
        log = self.node_dir(observer) / "logs" / "system.log"
        lines = read_node_log(log).splitlines()
        warns = [ln[:240] for ln in lines if ln.startswith("WARN") and ("Gossip" in ln or "FailureDetector" in ln)]
        return f"  {observer.name}: phi {phi}; last gossip warnings: {warns[-4:] or 'none'}"

    def wait_all_up(self, timeout_s: float = SEEN_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        addresses = {n.address for n in self.state().spec.nodes}
        while True:
            observer, view = self.ring_view()
            codes = {a: (view[a].code if a in view else "absent") for a in addresses}
            if all(c == "UN" for c in codes.values()):
                return
            if time.monotonic() > deadline:
                raise LabError(f"not all nodes UN within {timeout_s:.0f}s (seen by {observer}): {codes}")
            time.sleep(1)
