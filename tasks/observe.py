"""Thin observation tasks: a cluster id in, plain JSON-able dicts out; never cached (always re-observe)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import cast

from prefect import task
from prefect.cache_policies import NO_CACHE

from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.contracts import NodeCountersDoc, ProbeDoc, RegionsDoc, SchemaVersionsDoc
from cassandra_recovery.detection.observe import jmx_answers, jmx_counters, probe_all, status_views
from cassandra_recovery.detection.regions import datacenters, observe_until_settled
from cassandra_recovery.logic.probe_result import ProbeResult
from cassandra_recovery.parsers.describecluster import parse_describecluster
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.facade import process_storage
from cassandra_recovery.storage.migrate import SchemaNotCurrent


def _probe_doc(p: ProbeResult) -> ProbeDoc:
    return {"address": p.address, "ok": p.ok, "latency_ms": p.latency_ms, "error": p.error}


@task(name="probe-nodes", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def probe_nodes(cluster_id: str, timeout_s: float = 0.5) -> dict[str, ProbeDoc]:
    cluster = Settings().cluster(cluster_id)
    return {name: _probe_doc(p) for name, p in probe_all(cluster, timeout_s).items()}


@task(name="observe-regions", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def observe_regions(cluster_id: str) -> RegionsDoc | None:
    """Each datacenter's view (its own nodes directly, the others through its nodes), observed until the
    verdict is stable: split, one-way, dead datacenter or node failure. None for a one-datacenter cluster."""

    settings = Settings()
    cluster = settings.cluster(cluster_id)
    if len(datacenters(cluster)) < 2:
        return None
    try:
        store = process_storage(settings).region_views
    except SchemaNotCurrent:  # an old schema is a deployment mistake, not an outage: say so
        raise
    except Exception:  # no PostgreSQL: every region observed from here
        return cast(RegionsDoc, observe_until_settled(cluster))  # its dict literal is this shape
    return cast(RegionsDoc, observe_until_settled(cluster, store=store))


@task(name="peer-views", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def peer_views(cluster_id: str, observers: list[str]) -> dict[str, dict[str, str]]:
    """{observer: {address: UN/DN/...}} from each observer's own `nodetool status` (its failure detector)."""
    return status_views(Settings().cluster(cluster_id), observers)


@task(name="jmx-counters", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def counters(cluster_id: str, nodes: list[str]) -> dict[str, NodeCountersDoc]:
    cluster = Settings().cluster(cluster_id)
    out: dict[str, NodeCountersDoc] = {}
    for name, s in jmx_counters(cluster, nodes).items():
        h = s.hints
        out[name] = {
            "error": s.error,
            "dropped_mutations": s.dropped_mutations,
            "hints": None
            if h is None
            else {"total": h.total_hints, "created": h.created, "not_stored": h.not_stored, "succeeded": h.succeeded},
        }
    return out


@task(name="schema-versions", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def schema_versions(cluster_id: str, observer: str) -> SchemaVersionsDoc:
    cluster = Settings().cluster(cluster_id)
    d = parse_describecluster(Nodetool(cluster).output(observer, "describecluster", timeout_s=30))
    return {"versions": d.schema_versions, "agreement": d.schema_agreement, "unreachable": d.unreachable}


@task(name="jmx-answers", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def jmx_alive(cluster_id: str, nodes: list[str]) -> dict[str, bool | None]:
    cluster = Settings().cluster(cluster_id)
    if not nodes:
        return {}
    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:  # each hung node takes the whole timeout
        return dict(zip(nodes, pool.map(lambda n: jmx_answers(cluster, n), nodes), strict=True))
