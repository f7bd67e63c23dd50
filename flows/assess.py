"""Assessment phase: classify the failure, weigh the hint evidence, and decide a plan with its reasons."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.assessment.foreign import foreign_repairs_now
from cassandra_recovery.assessment.inputs import gather
from cassandra_recovery.contracts import Detection, ForeignRepairDoc, PlanDoc
from cassandra_recovery.logic.assessment import AppImpact, AssessmentInput, decide_plan, live_schema_agreement, with_jmx
from cassandra_recovery.logic.foreign_repairs import OwnRepairs
from cassandra_recovery.logic.regions import regions_assessment
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from cassandra_recovery.storage.migrate import SchemaNotCurrent
from cassandra_recovery.wiring import pg_parts
from deployments import names
from flows.clusters import cluster_named
from flows.detect import detect
from tasks.observe import jmx_alive


@task(name="gather-assessment-input", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def gather_input(
    cluster_id: str,
    detected: Detection,
    jmx: dict[str, bool | None],
    outage_started: str | None,
    known_condition: str | None,
    reported_down: list[str] | None = None,
) -> AssessmentInput:
    now = datetime.now(UTC)
    started = datetime.fromisoformat(outage_started) if outage_started else now
    known_condition = known_condition or maintenance(cluster_id, now)
    return gather(
        Settings().cluster(cluster_id),
        detected,
        now,
        started,
        jmx,
        known_condition=known_condition,
        app=app_impact(cluster_id),
        reported=reported_down or (),
    )


@task(name="observe-foreign-repairs", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def observe_foreign_repairs(cluster_id: str, nodes: list[str]) -> list[ForeignRepairDoc]:
    """Repairs running now that this tool did not start (Reaper, cron, an operator): one read per answering node."""
    try:
        return foreign_repairs_now(Settings().cluster(cluster_id), nodes, own_in_flight(cluster_id))
    except Exception as e:  # naming other tools' repairs is never worth a failed assessment
        get_run_logger().warning("repairs started elsewhere not observed: %s", e)
        return []


def own_in_flight(cluster_id: str) -> OwnRepairs:
    """This tool's segments still in flight (a scheduled repair's), from the checkpoints: not another tool's."""
    try:
        segments = process_storage().checkpoints.in_flight(cluster_id)
    except SchemaNotCurrent:
        raise
    except Exception:  # no PostgreSQL: every running repair is named
        return OwnRepairs()
    return OwnRepairs(ranges=frozenset((s.keyspace, s.range_text) for s in segments))


def maintenance(cluster_id: str, now: datetime) -> str | None:
    """An active maintenance window or silence for the cluster makes the outage known: report, do not act."""
    try:
        silences = process_storage().silences
    except SchemaNotCurrent:  # an old schema is a deployment mistake, not an outage: say so
        raise
    except Exception:  # no PostgreSQL: nothing known
        return None
    return silences.known_condition(cluster_id, now)


def source_of_truth_reachable() -> bool:
    """Whether PostgreSQL answers from here: during a split both regions fall back to it."""
    try:
        with process_storage().pool.connection(timeout=5) as conn:
            conn.execute("SELECT 1")
            conn.rollback()
        return True
    except Exception:
        return False


def app_impact(cluster_id: str) -> AppImpact:
    """The application side from the degraded-mode queue: how far the cache lags the source of truth."""
    try:
        pg = pg_parts(Settings(), cluster_id, pool=process_storage().pool)
    except SchemaNotCurrent:
        raise
    except Exception:  # no PostgreSQL: assess the cluster anyway
        return AppImpact()
    try:
        stats = pg.outbox.stats()
        return AppImpact(queue_age_s=stats.oldest_queued_age_s)
    except Exception:  # no degraded-mode tables for this cluster
        return AppImpact()
    finally:
        pg.close()


@flow(name=names.ASSESS, result_serializer="json")
def assess(
    cluster_id: str | None = None,
    detected: Detection | None = None,
    outage_started: str | None = None,
    known_condition: str | None = None,
    settle_attempts: int = 4,
    settle_wait_s: float = 5.0,
    reported_down: list[str] | None = None,
) -> PlanDoc:
    """A plan (wait for hints, repair a scope, wipe and replace, escalate, or no action) with its reasons.
    reported_down: nodes (names or addresses) the incident's triggers reported down; one that is back already
    still gets hint replay and verification."""
    cluster_id = cluster_named(cluster_id)
    log = get_run_logger()
    for attempt in range(1, settle_attempts + 1):
        detected = detected or detect(cluster_id)
        observed: Detection = detected
        down = list(detected["down"])
        # JMX of a hung node answers only by timing out (seconds): asked beside the other reads, not before them.
        pending = jmx_alive.submit(cluster_id, down) if down else None
        jmx: dict[str, bool | None] = {n: True for n in detected["nodes"] if n not in down}
        inp = gather_input(cluster_id, detected, jmx, outage_started, known_condition, reported_down)
        if pending is not None:
            jmx.update(pending.result())
            addresses = {n: d["address"] for n, d in detected["nodes"].items()}
            inp = with_jmx(inp, {addresses[n]: jmx[n] for n in down if n in addresses})
        plan = decide_plan(inp)
        unsettled = [c.node for c in plan.classifications if c.kind.value == "unknown"]
        if live_schema_agreement(inp).disagreeing:
            unsettled.append("schema versions")  # right after DDL, versions converge within seconds
        if not unsettled or attempt == settle_attempts:
            break
        # Gossip convicts a hung node only after several seconds: observe again before escalating.
        log.info("evidence on %s not settled yet (attempt %d); observing again", unsettled, attempt)
        time.sleep(settle_wait_s)
        detected = None
    doc = plan.as_dict()
    answering = [n for n, d in observed["nodes"].items() if d["probe"]["ok"]]
    if foreign := observe_foreign_repairs(cluster_id, answering):
        doc["foreign_repairs"] = foreign
        doc["reasons"] = [*doc["reasons"], *(f"repair started outside this tool running: {f['described']}"
                                             for f in foreign)]  # fmt: skip
    if regions := observed.get("regions"):
        section = regions_assessment(regions, inp.ring, inp.keyspaces, source_of_truth_reachable())
        doc["regions"] = section
        doc["reasons"] = [*section["reasons"], *doc["reasons"]]
    log.info("plan: %s for %s; reasons: %s", doc["action"], doc.get("targets"), "; ".join(doc.get("reasons", [])))
    return doc
