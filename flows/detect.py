"""Detection phase: observe every node once, as a production deployment can (no lab process ids)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from tasks.observe import counters, observe_regions, peer_views, probe_nodes, schema_versions


@flow(name="detect", result_serializer="json")
def detect(cluster_id: str = "lab") -> dict[str, Any]:
    log = get_run_logger()
    probes = probe_nodes(cluster_id)
    reachable = [n for n, p in probes.items() if p["ok"]]
    views = peer_views(cluster_id, reachable)
    nodes: dict[str, Any] = {}
    from cassandra_recovery.settings import Settings

    cluster = Settings().cluster(cluster_id)
    for n in cluster.nodes:
        seen = [v.get(n.address) for obs, v in views.items() if obs != n.name and n.address in v]
        nodes[n.name] = {
            "address": n.address,
            "probe": probes[n.name],
            "peers_seeing_down": sum(1 for c in seen if c and c.startswith("D")),
            "peers_total": len(seen),
        }
    schema = schema_versions(cluster_id, reachable[0]) if reachable else None
    jmx = counters(cluster_id, reachable) if reachable else {}
    down = [n for n, d in nodes.items() if not d["probe"]["ok"] or d["peers_seeing_down"]]
    log.info("nodes down or suspect: %s", down or "none")
    regions = observe_regions(cluster_id)
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
