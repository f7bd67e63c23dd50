"""Detection phase: observe every node once, as a production deployment can (no lab process ids)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from cassandra_recovery.contracts import DetectedNode, Detection
from cassandra_recovery.settings import Settings
from deployments import names
from flows.clusters import cluster_named
from tasks.observe import counters, observe_regions, peer_views, probe_nodes, schema_versions


@flow(name=names.DETECT, result_serializer="json")
def detect(cluster_id: str | None = None) -> Detection:
    cluster_id = cluster_named(cluster_id)
    log = get_run_logger()
    probes = probe_nodes(cluster_id)
    reachable = [n for n, p in probes.items() if p["ok"]]
    views = peer_views(cluster_id, reachable)
    nodes: dict[str, DetectedNode] = {}

    cluster = Settings().cluster(cluster_id)
    for n in cluster.nodes:
        seen = [v.get(n.address) for obs, v in views.items() if obs != n.name and n.address in v]
        nodes[n.name] = {
            "address": n.address,
            "probe": probes[n.name],
            "peers_seeing_down": sum(1 for c in seen if c and c.startswith("D")),
            "peers_total": len(seen),
        }
    # Independent reads, taken side by side: with a hung node, describecluster waits out its RPC timeout
    # (about 10 s) and would hold the others back.
    schema_f = schema_versions.submit(cluster_id, reachable[0]) if reachable else None
    jmx_f = counters.submit(cluster_id, reachable) if reachable else None
    regions_f = observe_regions.submit(cluster_id)
    schema = schema_f.result() if schema_f is not None else None
    jmx = jmx_f.result() if jmx_f is not None else {}
    down = [n for n, d in nodes.items() if not d["probe"]["ok"] or d["peers_seeing_down"]]
    log.info("nodes down or suspect: %s", down or "none")
    regions = regions_f.result()
    if regions is not None:
        v = regions["verdict"]
        log.info("regions: %s (sides %s); %s", v["kind"], v["sides"], "; ".join(v["reasons"]))
    return {
        "cluster": cluster_id,
        "nodes": nodes,
        "views": views,
        "schema": schema,
        "counters": jmx,
        "down": down,
        "regions": regions,
    }
