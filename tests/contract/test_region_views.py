"""Region views published by each region's detector, on real PostgreSQL; the freshest wins, old ones expire,
and the combined view uses them (a silent region is no report when it may not be observed from here)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.detection.region_store import RegionViews
from cassandra_recovery.detection.regions import views_for
from cassandra_recovery.lab.postgres import ensure_postgres
from cassandra_recovery.logic.regions import RegionsKind, RegionView, classify_regions
from cassandra_recovery.settings import ClusterConfig, NodeAccess, Settings
from tests import faults as F
from tests.migrated import migrated

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning needs root"),
    pytest.mark.area("regions"),
]
CLUSTER = ClusterConfig(
    id="rv-test",
    contact_points=["10.0.0.1"],
    local_datacenter="dc1",
    nodes=[
        NodeAccess(name="a", address="10.0.0.1", datacenter="dc1"),
        NodeAccess(name="b", address="10.0.0.2", datacenter="dc2"),
    ],
)


@pytest.fixture
def store() -> Iterator[RegionViews]:
    ensure_postgres(Settings())
    pool = make_pool(migrated(Settings()), max_size=1)
    rv = RegionViews(pool)
    yield rv
    with pool.connection() as conn:
        conn.execute("DELETE FROM region_views WHERE cluster_id = 'rv-test'")
        conn.commit()
    pool.close()


@pytest.mark.fault(F.DETECTOR_DOWN, F.DC_KILLED)
def test_published_views_are_combined_and_expire(store: RegionViews) -> None:
    dc1 = RegionView("dc1", {"10.0.0.1": True}, {"10.0.0.1": "U", "10.0.0.2": "D"}, {"10.0.0.2": False})
    store.publish("rv-test", RegionView("dc1", {"10.0.0.1": False}), "old")
    store.publish("rv-test", dc1, "host-a/dc1")  # the latest replaces the earlier one
    fresh = store.fresh("rv-test", max_age_s=30)
    assert list(fresh) == ["dc1"] and fresh["dc1"][0] == dc1 and fresh["dc1"][2] == "host-a/dc1"

    views, origin = views_for(CLUSTER, store, max_age_s=30, observe_missing=False)
    assert views == {"dc1": dc1, "dc2": None}
    assert origin["dc1"].startswith("published by host-a/dc1") and origin["dc2"] == "no report within 30s"
    # dc2's detector silent and dc1 sees it down: a dead datacenter, as one region alone would conclude
    verdict = classify_regions(views, {"10.0.0.1": "dc1", "10.0.0.2": "dc2"})
    assert verdict.kind is RegionsKind.DC_FAILURE

    time.sleep(1.2)
    assert store.fresh("rv-test", max_age_s=1) == {}
