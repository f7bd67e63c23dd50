"""Verify a table, fix what is cheap to fix in place (or repair), verify again: the verification phase's core."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

import psycopg
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.contracts import FixDoc
from cassandra_recovery.detection.clock import clock_skew
from cassandra_recovery.detection.observe import probe_all
from cassandra_recovery.incident.fence import Fence
from cassandra_recovery.logic.murmur3 import MAX_TOKEN, MIN_TOKEN
from cassandra_recovery.logic.probe_result import ProbeResult
from cassandra_recovery.logic.replication import TokenRange, range_of
from cassandra_recovery.logic.segments import plan_segments
from cassandra_recovery.logic.verify_plan import FixMethod, choose_fix, plan_chunks
from cassandra_recovery.recovery.repair import EngineConfig, RepairEngine
from cassandra_recovery.settings import ClusterConfig, NodeAccess, Settings
from cassandra_recovery.storage.facade import Storage, process_storage
from cassandra_recovery.verification.fix import read_at_all, rewrite_from_source
from cassandra_recovery.verification.scoped import ScopedPlan, plan_scope, postgres_skew_s, read_margins
from cassandra_recovery.verification.tables import TableSpec, generic_spec, orders_spec
from cassandra_recovery.verification.truth import SourceOfTruth
from cassandra_recovery.verification.verifier import VerificationReport, Verifier, VerifyConfig, keyspace_ranges

log = logging.getLogger(__name__)


def spec_for(settings: Settings, cql: CqlClient, keyspace: str | None, table: str | None) -> TableSpec:
    dom = settings.domain
    ks, t = keyspace or dom.keyspace, table or dom.cassandra_table
    if (ks, t) == (dom.keyspace, dom.cassandra_table):
        return orders_spec(dom)
    return generic_spec(cql, ks, t)


def verify(
    settings: Settings,
    cluster_id: str | None,
    keyspace: str | None = None,
    table: str | None = None,
    scope: Sequence[TokenRange] | None = None,
    config: VerifyConfig | None = None,
    progress: Callable[[str], None] = log.info,
    missed_since: datetime | None = None,
    exact_window: bool = False,
    cql: CqlClient | None = None,
) -> VerificationReport:
    """One verification pass; changes nothing. `missed_since`: when an outage was first seen; only the keys the
    source of truth changed since its window opened are read (the outage-scoped proof, verification/scoped.py),
    or the whole table when that is not possible or not cheaper (the report's `scope` says which and why).
    `exact_window`: the window opens at `missed_since` itself, without the margins (tests). `cql`: a client to
    use and leave open (a flow run's, wiring.process_cql); by default one of its own for this pass."""
    cluster = settings.cluster(cluster_id)
    with _client(cluster, cql) as cql:
        spec = spec_for(settings, cql, keyspace, table)
        cfg = config or VerifyConfig()
        workers = max(cfg.workers, settings.verification.scoped_workers if missed_since is not None else 0)
        pool, own = _truth_pool(settings, workers) if spec.has_truth else (None, False)
        try:
            truth = SourceOfTruth(pool, settings.domain) if pool else None
            skew = clock_skew(cluster, cql)
            plan = None
            if missed_since is not None:
                scoped_cfg = _scoped_config(cfg, workers)
                plan = _scoped_plan(settings, cluster, cql, spec, truth, scoped_cfg, missed_since, exact_window, skew)
                progress(f"verify {spec.name}: {'outage-scoped proof' if plan.chunks is not None else 'full pass'}"
                         f" ({plan.why})")  # fmt: skip
            if plan is not None and plan.chunks is not None:
                scoped_cfg = _scoped_config(cfg, workers)
                report = Verifier(cluster, cql, spec, truth, scoped_cfg, progress=progress).run(chunks=plan.chunks)
            else:
                report = Verifier(cluster, cql, spec, truth, cfg, progress=progress).run(scope)
            report.scope = None if plan is None else plan.as_dict()
            report.clock_skew = skew
            return report
        finally:
            if pool and own:
                pool.close()


def _scoped_config(cfg: VerifyConfig, workers: int) -> VerifyConfig:
    """More ranges read at once than a full pass's chunks, each proportionally smaller (the same rows in flight,
    the same memory); no preview: the proof is against PostgreSQL, range by range."""
    rows = max(1, cfg.target_rows_per_chunk * cfg.workers // workers)
    return replace(cfg, preview=False, workers=workers, target_rows_per_chunk=rows)


def _scoped_plan(
    settings: Settings,
    cluster: ClusterConfig,
    cql: CqlClient,
    spec: TableSpec,
    truth: SourceOfTruth | None,
    cfg: VerifyConfig,
    outage_seen: datetime,
    exact: bool,
    skew: dict[str, dict[str, Any]],
) -> ScopedPlan:
    if truth is None:
        return ScopedPlan(outage_seen, None, None, None, why=f"{spec.name} has no source of truth to list changes")
    v = settings.verification
    observer = next((n.address for n, p in _probes(cluster) if p.ok), None)
    if observer is None:  # the pass itself then says cannot_verify
        return ScopedPlan(outage_seen, None, None, None, why="no node answers: nothing to plan with")
    margins, notes = None, list[str]()
    if not exact:
        margins, notes = read_margins(cql, observer, v.observation_gap_s, skew, postgres_skew_s(truth))
    ring = keyspace_ranges(cql, observer, spec.keyspace)
    try:
        truth.prune_changes(v.changes_retention_s)
        total = truth.total_rows()
        full_chunks = len(plan_chunks(ring, total, v.rows_per_chunk, cfg.chunks_per_range))
        merge, cap = v.scoped_merge_rows, cfg.target_rows_per_chunk
        plan = plan_scope(truth, ring, outage_seen, margins, merge, full_chunks, cap)
    except psycopg.Error as e:  # e.g. a role without rights on the change log: the full pass, and why
        why = f"the change log could not be read ({type(e).__name__}: {str(e).strip()[:200]})"
        plan = ScopedPlan(outage_seen, None, margins, None, why=why)
    plan.notes += notes
    return plan


def _truth_pool(settings: Settings, workers: int) -> tuple[ConnectionPool, bool]:
    """The process's pool when it has a connection for every worker reading chunks at once; else one of its own
    (True: the caller closes it)."""
    shared = process_storage(settings).pool
    if workers <= shared.max_size:
        return shared, False
    return make_pool(settings, max_size=workers), True


def _client(cluster: ClusterConfig, cql: CqlClient | None) -> AbstractContextManager[CqlClient]:
    """The caller's client, left open; or one of this call's own, closed after it."""
    return nullcontext(cql) if cql is not None else CqlClient(cluster)


def fix(
    settings: Settings,
    cluster_id: str | None,
    report: VerificationReport,
    run_key: str,
    max_keys: int = 100,
    progress: Callable[[str], None] = log.info,
    fence: Fence | None = None,
    cql: CqlClient | None = None,
) -> FixDoc:
    """The cheaper of an in-place fix of the named keys and a full repair of the differing chunks' ranges;
    the caller verifies again afterwards. The fix is on the fenced log under `fence` (an incident's lease):
    refused before it starts when the run no longer holds the incident. `cql`: as for verify."""
    storage = process_storage(settings)
    fence = fence or Fence.unfenced(f"fix/{run_key}")
    cluster = settings.cluster(cluster_id)
    keys = sorted({k for d in report.diffs for k in (*d.missing, *d.extra, *d.different)})
    all_named = all(d.narrowed for d in report.diffs)
    chunk_rows = report.rows_truth or report.rows_compared
    rows_in_ranges = max(1, chunk_rows * len(report.diffs) // max(report.chunks, 1))
    agree = bool(report.preview and report.preview.get("in_sync") is True)
    has_truth = report.reference == "postgresql"
    choice = choose_fix(len(keys) if all_named else 0, rows_in_ranges, len(report.diffs), has_truth, max_keys, agree)
    progress(f"fix: {choice.method}: {choice.why}")
    out: dict[str, Any] = {"method": str(choice.method), "why": choice.why, "keys": len(keys)}
    target = {"run_key": run_key, "table": f"{report.keyspace}.{report.table}", "method": str(choice.method)}
    with _client(cluster, cql) as cql:
        spec = spec_for(settings, cql, report.keyspace, report.table)
        if choice.method == FixMethod.REPAIR:  # each repair segment is an action of its own on the log
            return cast(FixDoc, out | _repair(cluster, cql, storage, spec, report, run_key, progress, fence, settings))
        with storage.side_effects.acting(fence, "verification_fix", target | {"keys": len(keys)}, cluster_id) as act:
            if choice.method == FixMethod.REWRITE_FROM_SOURCE:
                out |= rewrite_from_source(storage.pool, cql, settings.domain, keys)
            else:
                out |= read_at_all(cql, spec, [leaf for d in report.diffs for leaf in d.leaves])
            act.detail = {k: v for k, v in out.items() if isinstance(v, int | str)}
    return cast(FixDoc, out)  # method, why and keys, with what the fix adds (its own counts)


def _repair(
    cluster: ClusterConfig,
    cql: CqlClient,
    storage: Storage,
    spec: TableSpec,
    report: VerificationReport,
    run_key: str,
    progress: Callable[[str], None],
    fence: Fence,
    settings: Settings,
) -> dict[str, Any]:
    """A full repair of the differing chunks (each inside one ring range, so one replica set)."""
    ranges = keyspace_ranges(cql, _live_observer(cluster), spec.keyspace)
    segs = plan_segments(repair_scope(spec.keyspace, [d.chunk for d in report.diffs], ranges), 1)
    engine = RepairEngine(
        cluster,
        cql,
        storage.checkpoints,
        EngineConfig("full", halt_check_s=settings.runbook.kill_switch_check_s),
        progress=progress,
        fence=fence,
        effects=storage.side_effects,
    )
    rep = engine.run(run_key, segs)
    return {"repair": {"segments": rep.segments, "ran": rep.ran, "escalated": rep.escalated, "failed": rep.failed}}


def repair_scope(
    keyspace: str, chunks: Sequence[tuple[int, int]], ranges: Sequence[TokenRange]
) -> list[tuple[str, TokenRange]]:
    """Each differing chunk once (several replicas can differ in one chunk), with its ring range's replicas, in
    token order."""
    out = {}
    for a, b in chunks:
        owner = range_of(b if b != MIN_TOKEN else MAX_TOKEN, ranges).replicas
        out[(a, b)] = (keyspace, TokenRange(a, b, owner))
    return [out[k] for k in sorted(out)]


def _probes(cluster: ClusterConfig) -> list[tuple[NodeAccess, ProbeResult]]:
    probes = probe_all(cluster, timeout_s=1.0)
    return [(n, probes[n.name]) for n in cluster.nodes]


def _live_observer(cluster: ClusterConfig) -> str:
    return str(next(n.address for n, p in _probes(cluster) if p.ok))
