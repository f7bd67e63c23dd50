"""Where each region's detector publishes its latest view (PostgreSQL, reachable from every region), so the
pipeline can put the regions' views together; a view older than `max_age_s` counts as no report."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from cassandra_recovery.clients.postgres import fetch_all
from cassandra_recovery.logic.regions import RegionView


class RegionViews:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    def publish(self, cluster_id: str, view: RegionView, reporter: str) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO region_views (cluster_id, dc, reporter, view) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (cluster_id, dc) DO UPDATE SET view = EXCLUDED.view, reporter = EXCLUDED.reporter,"
                " observed_at = clock_timestamp()",
                (cluster_id, view.dc, reporter, Jsonb(asdict(view))),
            )

    def fresh(self, cluster_id: str, max_age_s: float) -> dict[str, tuple[RegionView, datetime, str]]:
        """dc -> (view, observed_at, reporter) for views published within the last `max_age_s` seconds."""
        with self.pool.connection() as conn:
            rows = fetch_all(
                conn.execute(
                    "SELECT dc, view, observed_at, reporter FROM region_views WHERE cluster_id = %s"
                    " AND observed_at > clock_timestamp() - make_interval(secs => %s)",
                    (cluster_id, max_age_s),
                )
            )
            conn.rollback()
        out = {}
        for r in rows:
            v = r["view"]
            view = RegionView(str(v["dc"]), dict(v["probes"]), dict(v.get("gossip", {})), dict(v.get("connected", {})))
            out[str(r["dc"])] = (view, r["observed_at"], str(r["reporter"]))
        return out
