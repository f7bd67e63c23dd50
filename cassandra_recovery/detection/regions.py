"""One region's detector view: its own nodes probed directly, the others only through its nodes' gossip and
their outgoing node-to-node connections (`system_views.internode_outbound`), as a detector deployed in that
region would see them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.probe import probe_node
from cassandra_recovery.detection.observe import status_views
from cassandra_recovery.detection.region_store import RegionViews
from cassandra_recovery.errors import RecoveryError
from cassandra_recovery.logic.regions import RegionsVerdict, RegionView, classify_regions, settled
from cassandra_recovery.settings import ClusterConfig


def dc_of(cluster: ClusterConfig) -> dict[str, str]:
    """Each node's address -> its datacenter (the cluster's local one when the registry names none)."""
    return {n.address: n.datacenter or cluster.local_datacenter for n in cluster.nodes}


def datacenters(cluster: ClusterConfig) -> list[str]:
    return sorted(set(dc_of(cluster).values()))


def observe_region(cluster: ClusterConfig, dc: str, probe_timeout_s: float = 1.0) -> RegionView:
    own = [n for n in cluster.nodes if dc_of(cluster)[n.address] == dc]
    if not own:
        raise ValueError(f"cluster {cluster.id} has no node in datacenter {dc!r}")
    with ThreadPoolExecutor(max_workers=len(own)) as pool:
        answers = pool.map(lambda n: probe_node(n.address, timeout_s=probe_timeout_s).ok, own)
        probes = dict(zip([n.address for n in own], answers, strict=True))
    live = [n for n in own if probes[n.address]]
    views = [{a: code[:1] for a, code in v.items()} for v in status_views(cluster, [n.name for n in live]).values()]
    gossip: dict[str, str] = {}
    for addr in {a for v in views for a in v}:
        downs = sum(1 for v in views if v.get(addr) == "D")
        gossip[addr] = "D" if downs * 2 > len(views) else "U"
    connected: dict[str, bool] = {}
    if live:
        # A client of this region only: its control connection must not learn the other regions' state.
        regional = cluster.model_copy(update={"contact_points": [n.address for n in live], "local_datacenter": dc})
        try:
            live_addrs = [n.address for n in live]
            with CqlClient(regional, request_timeout_s=5.0, connect_timeout_s=3.0, hosts=live_addrs) as cql:
                for n in live:
                    rows = cql.execute_on(
                        n.address, "SELECT address, active_connections FROM system_views.internode_outbound"
                    )
                    for r in rows:
                        a = str(r["address"])
                        connected[a] = connected.get(a, False) or int(r["active_connections"] or 0) > 0
        except RecoveryError:
            pass  # no connection evidence: the classifier then cannot call anything one-way
    own_addrs = {n.address for n in own}
    return RegionView(dc, probes, gossip, {a: c for a, c in connected.items() if a not in own_addrs})


def observe_regions(cluster: ClusterConfig) -> dict[str, RegionView | None]:
    """Every region's view, observed from here (the lab's client reaches every region)."""
    return {dc: observe_region(cluster, dc) for dc in datacenters(cluster)}


def views_for(
    cluster: ClusterConfig, store: RegionViews | None, max_age_s: float = 30.0, observe_missing: bool = True
) -> tuple[dict[str, RegionView | None], dict[str, str]]:
    """Each region's view: the one its own detector published (`regions watch`) when fresh; otherwise observed
    from here, or no report (None) with observe_missing off. Also where each view came from."""
    published = store.fresh(cluster.id, max_age_s) if store is not None else {}
    views: dict[str, RegionView | None] = {}
    origin: dict[str, str] = {}
    for dc in datacenters(cluster):
        if dc in published:
            view, at, reporter = published[dc]
            views[dc], origin[dc] = view, f"published by {reporter} at {at.isoformat()}"
        elif observe_missing:
            views[dc], origin[dc] = observe_region(cluster, dc), "observed from here"
        else:
            views[dc], origin[dc] = None, f"no report within {max_age_s:.0f}s"
    return views, origin


def observe_until_settled(
    cluster: ClusterConfig,
    attempts: int = 8,
    every_s: float = 1.0,
    needed: int = 3,
    store: RegionViews | None = None,
    max_age_s: float = 30.0,
) -> dict[str, Any]:
    """The regions' views (published by their detectors, or observed from here) taken repeatedly until `needed`
    verdicts in a row agree (at most `attempts` rounds): {"verdict", "views", "origin", "observations",
    "settled"}; an unsettled verdict says so in its reasons."""
    where = dc_of(cluster)
    history: list[RegionsVerdict] = []
    views: dict[str, RegionView | None] = {}
    origin: dict[str, str] = {}
    final: RegionsVerdict | None = None
    for i in range(attempts):
        if i:
            time.sleep(every_s)
        views, origin = views_for(cluster, store, max_age_s)
        history.append(classify_regions(views, where))
        if (final := settled(history, needed)) is not None:
            break
    verdict = final or history[-1]
    if final is None:
        kinds = ", ".join(v.kind.value for v in history)
        verdict = replace(
            verdict, reasons=[*verdict.reasons, f"not settled after {len(history)} observations: {kinds}"]
        )
    return {
        "verdict": verdict.as_dict(),
        "views": {dc: asdict(v) if v else None for dc, v in views.items()},
        "origin": origin,
        "observations": len(history),
        "settled": final is not None,
    }
