"""The one vocabulary of test markers: runbook areas and the faults a test injects or proves handled.

Tests mark faults with these constants (`pytest.mark.fault(F.NODE_FROZEN)`), so a misspelt name fails at import;
tests/conftest.py refuses at collection any area or fault name not listed here. tests/FAULTS.md is generated
from the markers by scripts/faults.py.
"""

from __future__ import annotations

# Runbook areas: every test module carries exactly one (`pytestmark = pytest.mark.area("...")`).
AREAS: dict[str, str] = {
    "lab": "the lab cluster, its failure injection and the PostgreSQL/Prefect it provisions",
    "observation": "reading a cluster: nodetool/JMX/CQL parsers, node views, hot spots",
    "detection": "probes and the detector deciding a node is down",
    "assessment": "classification, consistency-level impact and the recovery plan",
    "degraded": "mitigation: the degraded-mode service, write queue, relay, breaker and compare",
    "hints": "hinted handoff: accumulation and drain",
    "repair": "repair segments, checkpoints, the repair engine and scheduled repair",
    "verification": "per-replica verification against PostgreSQL and the targeted fix",
    "incident": "incident store, leases, the incident flow end to end, Slack and the post-mortem",
    "intake": "the alert receiver: payloads, auth, spool and delivery to Prefect",
    "monitoring": "Prometheus rules and Alertmanager configuration",
    "regions": "several datacenters: splits, one-way partitions, dead datacenters, region views",
}

# Faults: name -> how a test brings it about. Names are what tests/FAULTS.md lists, so keep them stable.
NODE_FROZEN = "node frozen (SIGSTOP)"
SEED_FROZEN = "the first contact point and seed (node1) frozen"
EVERY_REPLICA_BUT_ONE_DOWN = "two of three replicas down at RF 3 (no quorum)"
EVERY_NODE_FROZEN = "every node frozen (Cassandra unavailable)"
NODE_BLIP = "node blip (down for less than the confirmation)"
NODE_FLAPPING = "node flapping (frozen and thawed repeatedly)"
NODE_PARTITIONED = "node partitioned (gossip and native transport off)"
NODE_KILLED = "node killed"
NODE_CANNOT_START = "node cannot start (port taken)"
NODE_BACK_BEFORE_ASSESSMENT = "node back before assessment"
OUTAGE_PAST_HINT_WINDOW = "outage longer than the hint window"
OUTAGE_PAST_GC_GRACE = "outage longer than gc_grace_seconds"
REPLICA_MISSED_WRITES = "replica missed writes (no hints)"
COORDINATOR_RESTARTED = "coordinator restarted (counters reset)"
HINT_DRAIN_STALLED = "hint delivery stalled"
SCHEMA_DISAGREEMENT = "schema disagreement"
DC_SPLIT = "datacenter split (nftables)"
DC_ONE_WAY = "one-way datacenter partition (nftables)"
DC_KILLED = "datacenter killed"
POSTGRES_DOWN = "PostgreSQL down"
PREFECT_DOWN = "Prefect server down"
CASSANDRA_REQUESTS_FAILING = "Cassandra requests failing"
OUTBOX_INSERT_FAILING = "outbox insert failing"
RELAY_DOWN = "relay down (queue backlog)"
RELAY_KILLED = "relay killed mid-delivery"
WRITES_OUT_OF_ORDER = "writes delivered out of order"
CACHE_DIVERGED = "Cassandra copy diverged from PostgreSQL"
CONCURRENT_WORKERS = "concurrent workers racing for one item"
LEASE_EXPIRED = "lease expired"
LEASE_HOLDER_HUNG = "lease holder hung (SIGSTOP)"
FLOW_RUN_CRASHED = "flow run crashed (process killed)"
SERVE_HOST_DIED = "the host running serve died (serve and its flow runs SIGKILLed)"
SERVE_HOST_FROZEN = "the host running serve froze past the lease TTL, then woke (SIGSTOP, SIGCONT)"
REPAIR_SESSION_ORPHANED = "repair session orphaned (nodetool killed)"
REPAIR_SEGMENT_STUCK = "repair segment stuck or failing"
FOREIGN_REPAIR_RUNNING = "a repair started outside the tool (Reaper, cron, an operator) on a replica"
REAPER_FAILING = "Reaper's REST API unreachable or refusing"
APPROVAL_TIMED_OUT = "approval timed out"
ALERT_FLOOD = "alert receiver flood (re-sent or excessive alerts)"
DETECTOR_DOWN = "detector down (silent)"
SLACK_FAILING = "Slack API failing (errors, rate limits, hangs)"
SCHEMA_FROM_OLDER_VERSION = "PostgreSQL schema made by an older version of the tool"
SUSTAINED_WRITES = "sustained writes (the queue never empties)"
FLOW_RUN_FAILED = "flow run failed (raised)"
MONITORED_INCIDENT_RETRIGGERED = "a new failure while the incident is monitored"
KILL_SWITCH_SET = "kill switch set while automation acts"
ESCALATED_INCIDENT_RETRIGGERED = "a new outage while the incident is escalated to a person"

FAULTS: dict[str, str] = {
    NODE_FROZEN: "lab.freeze: the JVM is SIGSTOPped; peers and probes time out",
    EVERY_NODE_FROZEN: "lab.freeze on every node: no replica answers",
    NODE_BLIP: "frozen and thawed within fewer probes than confirm a failure",
    NODE_FLAPPING: "frozen and thawed every few seconds",
    NODE_PARTITIONED: "lab.partition: gossip and native transport stopped, the process lives",
    NODE_KILLED: "lab.kill: the process is gone (unsynced commit log lost)",
    NODE_CANNOT_START: "lab.up with a node's storage port already bound",
    NODE_BACK_BEFORE_ASSESSMENT: "the reported node is up again when the run assesses",
    OUTAGE_PAST_HINT_WINDOW: "max_hint_window cut to seconds at runtime (nodetool setmaxhintwindow)",
    OUTAGE_PAST_GC_GRACE: "a table with gc_grace_seconds shorter than the outage",
    REPLICA_MISSED_WRITES: "handoff disabled and hints truncated while the replica was away",
    COORDINATOR_RESTARTED: "a coordinator's hint/dropped-mutation counters go down",
    HINT_DRAIN_STALLED: "pending hints stop going down",
    SCHEMA_DISAGREEMENT: "nodes report different schema versions",
    DC_SPLIT: "lab.split: nftables cuts the connections between two datacenters both ways",
    DC_ONE_WAY: "lab.split one_way: only the connections one datacenter opens are cut",
    DC_KILLED: "every node of a datacenter killed",
    POSTGRES_DOWN: "PostgreSQL stopped, or a pool/store that refuses connections",
    PREFECT_DOWN: "the Prefect server stopped, or a launcher that is down",
    CASSANDRA_REQUESTS_FAILING: "cache writes or reads raise (fake cache, breaker outcomes)",
    OUTBOX_INSERT_FAILING: "the write queue's insert fails inside the write transaction",
    RELAY_DOWN: "writes queued with no relay running; a drain catches up",
    RELAY_KILLED: "the relay SIGKILLed after its Cassandra write, before marking it delivered",
    WRITES_OUT_OF_ORDER: "two versions of a row delivered newest first",
    CACHE_DIVERGED: "a row deleted in Cassandra and one changed in PostgreSQL behind the service's back",
    CONCURRENT_WORKERS: "threads or processes racing to open, claim or deliver the same thing",
    EVERY_REPLICA_BUT_ONE_DOWN: "node2 and node3 frozen together: QUORUM cannot be met, writes are queued",
    SEED_FROZEN: "node1, the clients' first contact point and a seed, SIGSTOPped under writes",
    LEASE_EXPIRED: "a lease's time-to-live runs out while its holder is silent",
    LEASE_HOLDER_HUNG: "the lease holder is SIGSTOPped (or modelled so), retried, then wakes up",
    FLOW_RUN_CRASHED: "the flow run's process killed, or its run set Crashed",
    SERVE_HOST_DIED: "serve and every process of its flow runs SIGKILLed; the run stays RUNNING in Prefect",
    SERVE_HOST_FROZEN: "serve and its flow run SIGSTOPped past the lease TTL, another serve takes over, SIGCONT",
    REPAIR_SESSION_ORPHANED: "nodetool killed while its repair session goes on inside Cassandra",
    REPAIR_SEGMENT_STUCK: "a segment that times out or fails every attempt",
    FOREIGN_REPAIR_RUNNING: "system_views/nodetool output captured while `nodetool repair` started by hand ran",
    REAPER_FAILING: "the Reaper client pointed at a closed port, refused credentials or transitions",
    APPROVAL_TIMED_OUT: "nobody approves a replacement within its timeout",
    ALERT_FLOOD: "Alertmanager re-sends, duplicates, or more requests than the rate limit",
    DETECTOR_DOWN: "a detector's metrics endpoint or published region view goes silent",
    SLACK_FAILING: "the Slack API answers errors, 429s, hangs or refuses connections",
    SCHEMA_FROM_OLDER_VERSION: "a database from before migrations (complete, partial or empty) meets the new code",
    SUSTAINED_WRITES: "writers keep committing while a waiter runs; transactions commit out of seq order",
    FLOW_RUN_FAILED: "the flow run raised and ended FAILED (not crashed), or a step inside it raised",
    MONITORED_INCIDENT_RETRIGGERED: "an outage, over by the time a trigger joins the incident awaiting its follow-up",
    KILL_SWITCH_SET: "the cluster's kill switch set before an action starts, or while a repair session runs",
    ESCALATED_INCIDENT_RETRIGGERED: "a new outage's trigger joins an incident a person owns (escalated)",
}


# The chaos matrix of issue 16 on the real lab: each scenario runs an incident end to end under writes and ends
# resolved on a converged per-replica verification, nothing lost, one run acting at a time on the fenced log.
# (scenario, test, seconds of the test in one full bin/test on this 2-core machine, both cluster halves running;
# the demo's includes starting its fresh lab. Faults are merged into shared outages.)
CHAOS_MATRIX: list[tuple[str, str, int]] = [
    ("node1 (first contact point, seed) frozen under writes; PostgreSQL restarted in assessment and in recovery;"
     " Slack failing",
     "test_chaos_seed_node1_frozen_under_writes_postgres_restarted_in_assessment_and_recovery_slack_failing", 91),
    ("two of three nodes down at RF 3 (no quorum, writes queued); Prefect restarted mid-incident, then the live"
     " run marked Crashed as after an outage longer than the zombie window; Slack failing",
     "test_chaos_two_of_three_down_no_quorum_prefect_restarted_mid_incident_slack_failing", 119),
    ("the serve process group killed mid-recovery (host dead); another serve takes over",
     "test_the_host_running_an_incident_dies_mid_recovery_and_another_serve_takes_the_incident_over", 124),
    ("the serve process group frozen past the lease TTL, taken over, then woken: the old run changes nothing",
     "test_a_frozen_serve_host_is_taken_over_and_its_run_wakes_up_stale_and_changes_nothing", 120),
    ("a second failure while the incident is monitored; a node back before the run assesses; a flap meanwhile",
     "test_a_monitored_incident_retriggered_after_an_outage_drains_the_queue_watches_hints_and_verifies", 152),
    ("a run marked FAILED from outside mid-recovery, then the alert sent again; Slack failing",
     "test_chaos_a_run_marked_failed_mid_recovery_then_the_alert_sent_again_leaves_one_run_acting", 74),
    ("a node flapping (frozen and thawed in turn) through the incident; Slack failing",
     "test_chaos_a_node_flapping_through_the_incident_is_verified_once_it_settles", 125),
    ("a node partitioned under writes (the demo, from a fresh lab)",
     "test_the_demo_brings_up_a_fresh_lab_and_ends_converged", 234),
]  # fmt: skip


def tier_of(nodeid: str) -> str:
    """The suite tier of a test id: the directory under tests/ (unit, contract, cluster)."""
    parts = nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else "other"


TIERS = ("unit", "contract", "cluster")  # the tiers bin/test runs


def marker_problems(nodeid: str, areas: list[tuple[object, ...]], faults: list[tuple[object, ...]]) -> list[str]:
    """What is wrong with one test's markers: `areas`/`faults` are the args of each area/fault marker on it."""
    problems = []
    if len(areas) != 1 or len(areas[0]) != 1:
        problems.append(f"{nodeid}: needs exactly one area marker with one name, has {areas or 'none'}")
    elif areas[0][0] not in AREAS:
        problems.append(f"{nodeid}: unknown area {areas[0][0]!r} (known: {', '.join(AREAS)})")
    for args in faults:
        if not args:
            problems.append(f"{nodeid}: fault marker without a fault name")
        for name in args:
            if name not in FAULTS:
                problems.append(f"{nodeid}: unknown fault {name!r} (add it to tests/faults.py or use a listed one)")
    return problems
