"""The `cassandra-recovery` console script; one function per verb, exit code 2 for bad input."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeAlias, cast

from cassandra_recovery.commands import (
    compare,
    db,
    demo,
    detector,
    hotspots,
    incident,
    killswitch,
    load,
    orchestration,
    queue,
    receiver,
    regions,
    repair,
    silence,
    teardown,
    verify,
)
from cassandra_recovery.errors import ConfigError, RecoveryError, ToolMissingError
from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.settings import Settings


def _progress(msg: str) -> None:
    print(f"[lab] {msg}", file=sys.stderr, flush=True)


def _lab(settings: Settings) -> Lab:
    return Lab(settings.lab, progress=_progress)


def cmd_lab(args: argparse.Namespace, settings: Settings) -> int:
    if args.lab_verb == "load":
        return load.run(args, settings)
    if args.lab_verb == "monitoring":
        from cassandra_recovery.lab import monitoring

        cfg = monitoring.MonitoringConfig(
            settings.lab.base_dir / "monitoring", cluster=settings.default_cluster, token_file=args.token_file
        )
        if args.receiver_url:
            cfg = dataclasses.replace(cfg, receiver_url=args.receiver_url)
        return monitoring.cli(args.action, cfg, _progress)
    lab = _lab(settings)
    verb = args.lab_verb
    if verb == "up":
        if args.dcs > 1 and args.nodes_per_dc is None:
            raise ConfigError("with --dcs, give the size of each datacenter with --nodes-per-dc")
        per_dc = args.nodes_per_dc if args.nodes_per_dc is not None else args.nodes
        lab.up(nodes=per_dc, tokens=args.tokens, hint_window=args.hint_window, dcs=args.dcs)
        if args.postgres or args.prefect:
            _postgres(settings)
        if args.prefect:
            from cassandra_recovery.lab.prefect_server import ensure_prefect_server

            ensure_prefect_server(settings, progress=_progress)
        return _print_status(lab, as_json=args.json)
    if verb == "down":
        if args.drop_postgres and not args.postgres:
            raise ConfigError("--drop-postgres goes with --postgres")
        return teardown.down(
            settings, lab, args.keep_data, args.prefect, args.postgres, _progress, drop_postgres=args.drop_postgres
        )
    if verb == "leftovers":
        return teardown.report_leftovers(settings, everyone=args.all, stop=args.stop)
    if verb == "status":
        return _print_status(lab, as_json=args.json)
    if verb == "nodetool":
        proc = lab.nodetool().run(args.node, *args.args, check=False)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        return proc.returncode
    if verb == "split":
        lab.split(args.group_a, args.group_b, one_way=args.one_way)
        return _print_status(lab, as_json=args.json)
    if verb == "unsplit":
        lab.unsplit()
        return 0
    if verb == "postgres":
        _postgres(settings)
        return 0
    action = {
        "freeze": lab.freeze,
        "thaw": lab.thaw,
        "partition": lab.partition,
        "heal": lab.heal,
        "kill": lab.kill,
        "start": lab.start,
    }[verb]
    action(args.node)
    return 0


def _postgres(settings: Settings) -> None:
    """The lab's PostgreSQL, provisioned and its schema at this code's migrations."""
    from cassandra_recovery.lab.postgres import ensure_postgres
    from cassandra_recovery.storage.migrate import upgrade_for

    ensure_postgres(settings, progress=_progress)
    for s in upgrade_for(settings):
        _progress(f"postgres: schema {s.track} {s.current or 'none'} -> {s.head}" if not s.up_to_date else
                  f"postgres: schema {s.track} at {s.head}")  # fmt: skip


def _print_status(lab: Lab, as_json: bool) -> int:
    rows = lab.status()
    cuts = lab.cuts()
    if as_json:
        doc = {"cluster": "lab", "nodes": [r.as_dict() for r in rows], "cuts": [c.as_dict() for c in cuts]}
        print(json.dumps(doc, indent=2))
        return 0
    print(f"{'node':<7} {'address':<11} {'state':<5} {'process':<8} {'partitioned':<11} observer")
    for r in rows:
        part = str(r.partitioned).lower()
        print(f"{r.name:<7} {r.address:<11} {r.state:<5} {r.process:<8} {part:<11} {r.observer or '-'}")
    for c in cuts:
        print(f"cut: {c.describe()}{' (one way)' if c.one_way else ''}")
    return 0


def _add_lab(sub: SubParsers) -> None:
    lab = sub.add_parser("lab", help="the local real Cassandra 5.0 lab cluster (cluster id `lab`)")
    lsub = lab.add_subparsers(dest="lab_verb", required=True)
    up = lsub.add_parser("up", help="start the lab (idempotent)")
    up.add_argument("--nodes", type=int, default=3, help="nodes (one datacenter)")
    up.add_argument("--dcs", type=int, default=1, help="datacenters dc1..dcN (with --nodes-per-dc)")
    up.add_argument("--nodes-per-dc", type=int, default=None, help="nodes in each datacenter")
    up.add_argument("--tokens", type=int, default=1, help="tokens per node (balanced, explicit)")
    up.add_argument("--hint-window", default="3h", help="max_hint_window, e.g. 20s, 3h")
    up.add_argument("--postgres", action="store_true", help="also install/start PostgreSQL")
    up.add_argument("--prefect", action="store_true", help="also start the Prefect server (on PostgreSQL)")
    down = lsub.add_parser("down", help="stop every lab node, frozen ones too (idempotent)")
    down.add_argument("--keep-data", action="store_true")
    down.add_argument(
        "--postgres",
        action="store_true",
        help="also stop everything else: the lab's services and Prefect server, and PostgreSQL",
    )
    down.add_argument("--prefect", action="store_true", help="also stop the lab's services and the Prefect server")
    down.add_argument(
        "--drop-postgres",
        action="store_true",
        help="with --postgres: also drop the throwaway cluster port<PORT> the lab created on the configured port"
        " (never the distribution's main cluster)",
    )
    left = lsub.add_parser("leftovers", help="list the project's processes still running (exit 1 when any)")
    left.add_argument("--all", action="store_true", help="any lab's, not only this lab directory's")
    left.add_argument("--stop", action="store_true", help="stop them too (SIGTERM, then SIGKILL)")
    lsub.add_parser("status", help="per node: address, state seen by a live peer, process")
    lsub.add_parser(
        "postgres", help="install (when missing) and start PostgreSQL, create role and database, run the migrations"
    )
    sp = lsub.add_parser("split", help="cut node-to-node traffic between two groups, processes alive (nftables)")
    sp.add_argument("group_a", help="a datacenter (dc1) or nodes (node1,node2 or addresses)")
    sp.add_argument("group_b", help="the other group")
    sp.add_argument("--one-way", action="store_true", help="block only the connections group A opens to group B")
    lsub.add_parser("unsplit", help="remove every cut made by `lab split`")
    for verb, text in [
        ("freeze", "SIGSTOP the node's JVM"),
        ("thaw", "SIGCONT the node's JVM"),
        ("partition", "disable gossip and native transport, process alive"),
        ("heal", "enable gossip and native transport"),
        ("kill", "SIGKILL the node"),
        ("start", "start a stopped node"),
    ]:
        sp = lsub.add_parser(verb, help=text)
        sp.add_argument("node", help="node1..nodeN or an address")
    load.add_arguments(lsub.add_parser("load", help="drive the order service against the lab"))
    mon = lsub.add_parser("monitoring", help="our own Prometheus (:9490) and Alertmanager (:9493) with the rules")
    mon.add_argument("action", choices=["up", "down", "status"])
    mon.add_argument("--receiver-url", default=None, help="webhook URL (default the local alert receiver)")
    mon.add_argument("--token-file", type=Path, default=None, help="0600 file with the receiver's bearer token")
    nt = lsub.add_parser("nodetool", help="run nodetool against a node")
    nt.add_argument("node")
    nt.add_argument("args", nargs=argparse.REMAINDER)


Run = Callable[[argparse.Namespace, Settings], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # argparse names no public type


@dataclass(frozen=True)
class Verb:
    """One row of the CLI's table of contents: the top-level commands a module adds, and what runs them."""

    commands: tuple[str, ...]
    add: Callable[[SubParsers], None]
    run: Run


VERBS: tuple[Verb, ...] = (
    Verb(("lab",), _add_lab, cmd_lab),
    Verb(("queue",), queue.add_parser, queue.run),
    Verb(("compare",), compare.add_parser, compare.run),
    Verb(("serve", "respond", "detect", "assess"), orchestration.add_parsers, orchestration.run),
    Verb(("detector",), detector.add_parser, detector.run),
    Verb(("regions",), regions.add_parser, regions.run),
    Verb(("silence",), silence.add_parser, silence.run),
    Verb(("hotspots",), hotspots.add_parser, hotspots.run),
    Verb(("repair",), repair.add_parser, repair.run),
    Verb(("verify",), verify.add_parser, verify.run),
    Verb(("receiver",), receiver.add_parser, receiver.run),
    Verb(("incident",), incident.add_parser, incident.run),
    Verb(("kill-switch",), killswitch.add_parser, killswitch.run),
    Verb(("db",), db.add_parser, db.run),
    Verb(("demo",), demo.add_parser, demo.run),
)
RUNS: dict[str, Run] = {command: verb.run for verb in VERBS for command in verb.commands}
JSON_HELP = 'machine output on stdout; an error as {"error": {"code", "message"}, "exit_status"} too'
RAW_OUTPUT = {"nodetool"}  # passes the tool's own output and arguments through: no options of ours after the node


class _Parser(argparse.ArgumentParser):
    json_errors = False  # set by main when --json is on the command line: bad input is reported as JSON too

    def error(self, message: str) -> NoReturn:
        if _Parser.json_errors:
            _json_error("bad_input", 2, message)
        super().error(message)


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for name, child in action.choices.items():
            if name not in RAW_OUTPUT:
                yield from _leaves(child)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cassandra-recovery", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    # Every sub-parser is a _Parser too (argparse builds them with the parent's class); the verbs take the base type.
    sub = cast(SubParsers, p.add_subparsers(dest="command", required=True))
    for verb in VERBS:
        verb.add(sub)
    for leaf in _leaves(p):  # shared options, defined once
        leaf.add_argument("--json", action="store_true", help=JSON_HELP)
    return p


def _one_line_driver_warnings(record: logging.LogRecord) -> bool:
    """The driver logs failures with their traceback; during an outage they are expected, so an operator sees one
    line each (the exception's type and message) unless --verbose asks for more."""
    if record.name.split(".")[0] == "cassandra" and record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        record.msg = f"{record.getMessage()} {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
    return True


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _Parser.json_errors = "--json" in argv
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # The driver logs every failed (re)connect, and an error when it gives up; the command says what failed
        # in its own words (one line), so the driver's own lines only show with --verbose.
        logging.getLogger("cassandra").setLevel(logging.CRITICAL)
        for handler in logging.getLogger().handlers:
            handler.addFilter(_one_line_driver_warnings)
    try:
        settings = Settings()
        return RUNS[args.command](args, settings)
    except ConfigError as e:
        return _failed(args, "bad_input", 2, str(e))
    except ToolMissingError as e:
        return _failed(args, "tool_missing", 3, str(e))
    except RecoveryError as e:
        return _failed(args, "failed", 1, str(e))
    except subprocess.TimeoutExpired as e:
        return _failed(args, "timeout", 1, f"timed out: {e}")


def _failed(args: argparse.Namespace, code: str, status: int, message: str) -> int:
    """One line on stderr; with --json also the error as JSON on stdout, where a script reads the output."""
    print(f"error: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        _json_error(code, status, message)
    return status


def _json_error(code: str, status: int, message: str) -> None:
    print(json.dumps({"error": {"code": code, "message": message}, "exit_status": status}))


if __name__ == "__main__":
    sys.exit(main())
