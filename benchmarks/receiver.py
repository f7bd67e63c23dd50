"""Alert receiver throughput with de-duplication and p50/p99 latency, against a no-op endpoint on the same HTTP stack.

Both apps run under uvicorn (one background thread each, free loopback port) and are driven by the same httpx
client (sync keep-alive clients in --threads threads, in one spawned process) with the same request bodies:
Alertmanager v4 webhooks of 2 alerts each (tests/fixtures/alerts/alertmanager_v4_firing.json), ~70% re-sends of
a payload already in the stream (same fingerprint + startsAt: duplicates) and ~30% new episodes (new startsAt).
- receiver: the real `create_app` + `Intake` with the in-memory fakes (MemorySpool, MemoryIncidents,
  RecordingLauncher), so it measures the HTTP stack + rate limiter + bearer auth + parsing + de-duplication +
  launch bookkeeping, not PostgreSQL or Prefect. The rate limit is set very high (rate_per_s/rate_burst) because
  all requests come from one loopback address and the default (10/s, burst 50) would answer 429.
- baseline: a bare FastAPI app with one POST route that returns {} (same uvicorn, same client, same bodies).
- with --postgres, also the receiver on the real PostgreSQL spool (PgSpool on a throwaway table, dropped at the
  end) when the PostgreSQL of Settings() answers; skipped (reported as such) when it does not.
The client runs in its own process so it does not take the servers' GIL, but on a small or busy machine it still
takes their CPU: absolute figures depend on the host; the ratios, measured in the same run, are the result.
Exits non-zero unless every request got 200 and the launcher saw exactly one launch per distinct episode sent.
Usage: .venv/bin/python benchmarks/receiver.py [--requests 2000] [--threads 8] [--new-share 0.3] [--seed 0]
  [--postgres]
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from cassandra_recovery.clients.postgres import make_pool
from cassandra_recovery.intake.app import create_app
from cassandra_recovery.intake.config import ReceiverConfig
from cassandra_recovery.intake.memory import MemoryIncidents, MemorySpool, RecordingLauncher
from cassandra_recovery.intake.metrics import ReceiverMetrics
from cassandra_recovery.intake.ports import Spool
from cassandra_recovery.intake.service import Intake
from cassandra_recovery.intake.spool import PgSpool
from cassandra_recovery.settings import Settings
from cassandra_recovery.storage.migrate import runtime_role_of, upgrade
from cassandra_recovery.storage.names import TRACKS, SchemaNames

TEMPLATE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "alerts" / "alertmanager_v4_firing.json"
PATH = "/alerts/alertmanager"
TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a throwaway token for a loopback-only benchmark
WARMUP = 50  # requests per server before timing; their episodes count in the launch check


# --- traffic ------------------------------------------------------------------------------------------------------


@dataclass
class Traffic:
    bodies: list[bytes]
    episodes: set[tuple[str, str]]  # distinct (fingerprint, startsAt) alerts sent
    alerts: int  # alerts in all bodies, duplicates included
    new: int  # bodies that were new episodes (the rest are re-sends)


def traffic(n: int, new_share: float, rng: random.Random, first_episode: int) -> Traffic:
    """n bodies: a new episode (both alerts re-fire with a new startsAt) with probability new_share, else an
    exact re-send of a body sent earlier in the stream (Alertmanager's repeat_interval or a retry)."""
    template = json.loads(TEMPLATE.read_text())
    base = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    fresh: list[bytes] = []
    out = Traffic([], set(), 0, 0)
    for _ in range(n):
        if not fresh or rng.random() < new_share:
            doc = copy.deepcopy(template)
            episode = first_episode + len(fresh)
            for j, alert in enumerate(doc["alerts"]):
                starts = base + timedelta(minutes=episode, seconds=30 * j)
                alert["startsAt"] = starts.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                out.episodes.add((alert["fingerprint"], alert["startsAt"]))
            fresh.append(json.dumps(doc).encode())
            out.new += 1
            body = fresh[-1]
        else:
            body = fresh[rng.randrange(len(fresh))]
        out.bodies.append(body)
        out.alerts += len(template["alerts"])
    return out


# --- servers ------------------------------------------------------------------------------------------------------


class Served:
    """An ASGI app under uvicorn in a daemon thread, on a loopback port picked by the kernel."""

    def __init__(self, app: FastAPI) -> None:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and with
        # proto 0 every response waits ~40 ms for the client's delayed ACK (Nagle), hiding all else.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def noop_app() -> FastAPI:
    app = FastAPI()

    @app.post(PATH)
    async def noop() -> dict[str, Any]:
        return {}

    return app


@dataclass
class Receiver:
    app: FastAPI
    intake: Intake
    launcher: RecordingLauncher


def receiver(spool: Spool) -> Receiver:
    # All requests come from 127.0.0.1: one token bucket, so the limit must exceed what the run sends.
    cfg = ReceiverConfig.model_validate({"tokens": [TOKEN], "rate_per_s": 1e9, "rate_burst": 1_000_000_000})
    launcher = RecordingLauncher()
    intake = Intake(spool, MemoryIncidents(), launcher, ReceiverMetrics(), cfg.inline_timeout_s)
    return Receiver(create_app(cfg, intake, "lab"), intake, launcher)


# --- client -------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]


def drive(url: str, bodies: list[bytes], threads: int) -> Run:
    """Every body POSTed once, by `threads` keep-alive clients taking the next body from a shared index.
    Runs in the client process (see `Client`)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    lock = threading.Lock()
    nxt = iter(range(len(bodies)))
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    def worker() -> None:
        mine: list[float] = []
        codes: dict[int, int] = {}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    break
                t0 = time.perf_counter()
                r = client.post(PATH, content=bodies[i])
                mine.append((time.perf_counter() - t0) * 1000)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return Run(time.perf_counter() - t0, latencies, statuses)


class Client:
    """One spawned process that runs `drive`, so the client's CPU does not share the servers' GIL."""

    def __enter__(self) -> Client:
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown()

    def drive(self, url: str, bodies: list[bytes], threads: int) -> Run:
        return self.pool.submit(drive, url, bodies, threads).result()


def _pct(sorted_ms: list[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, max(0, round(p / 100 * len(sorted_ms)) - 1))]


def summary(run: Run, alerts_per_request: int) -> dict[str, Any]:
    ms = sorted(run.latencies_ms)
    n = len(ms)
    return {
        "requests_per_s": round(n / run.seconds),
        "alerts_per_s": round(n * alerts_per_request / run.seconds),
        "p50_ms": round(_pct(ms, 50), 2),
        "p99_ms": round(_pct(ms, 99), 2),
        "max_ms": round(ms[-1], 2),
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
    }


def receiver_counts(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_total") and s.value:
                key = s.name.removeprefix("cr_receiver_").removesuffix("_total")
                label = next(iter(s.labels.values()), "")
                out[f"{key}:{label}" if label else key] = s.value
    return out


def bench_receiver(
    client: Client, spool: Spool, warm: Traffic, timed: Traffic, threads: int, base: dict[str, Any]
) -> dict[str, Any]:
    rec = receiver(spool)
    with Served(rec.app) as srv:
        client.drive(srv.url, warm.bodies, threads)
        run = client.drive(srv.url, timed.bodies, threads)
        counts = receiver_counts(srv.url)
    rec.intake.close()
    per_request = timed.alerts // len(timed.bodies)
    out = summary(run, per_request)
    out["throughput_vs_noop"] = round(out["requests_per_s"] / base["requests_per_s"], 3)
    out["p50_vs_noop"] = round(out["p50_ms"] / base["p50_ms"], 2)
    episodes = len(warm.episodes | timed.episodes)
    out["episodes_sent"] = episodes
    out["launches"] = len(rec.launcher.calls)
    out["distinct_launch_keys"] = len(rec.launcher.runs)
    out["duplicates_expected"] = warm.alerts + timed.alerts - episodes
    out["receiver_metrics"] = counts
    out["launches_match_episodes"] = out["launches"] == out["distinct_launch_keys"] == episodes
    return out


# --- PostgreSQL (optional) ----------------------------------------------------------------------------------------


def with_postgres(fn: Callable[[Spool], dict[str, Any]]) -> dict[str, Any]:
    """fn on a PgSpool over a throwaway table when the PostgreSQL of Settings() answers; else a skip note.
    Never starts PostgreSQL, and never creates the lab password file (lab_password would)."""
    settings = Settings()
    if settings.postgres.password is None and not (settings.lab.base_dir / "postgres.password").exists():
        return {"skipped": "no PostgreSQL password configured and no lab password file"}
    try:
        with psycopg.connect(settings.postgres_conninfo(), connect_timeout=3):
            pass
    except psycopg.Error as e:
        return {"skipped": f"PostgreSQL does not answer: {type(e).__name__}: {str(e).strip()[:200]}"}
    table = f"bench_alert_inbox_{uuid.uuid4().hex[:10]}"
    names = SchemaNames(inbox=table)
    upgrade(settings.migration_conninfo(), names, runtime_role_of(settings))  # its own inbox and version table
    pool = make_pool(settings, max_size=20)
    try:
        return {"table": table, **fn(PgSpool(pool, table))}
    finally:
        pool.close()
        with psycopg.connect(settings.migration_conninfo(), connect_timeout=5, autocommit=True) as conn:  # its owner
            drop = [sql.Identifier(t) for t in (table, *(names.version_table(t) for t in TRACKS))]
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(drop)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8, help="concurrent keep-alive clients")
    ap.add_argument("--new-share", type=float, default=0.3, help="share of requests that are new episodes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--postgres", action="store_true", help="also the receiver on PgSpool (throwaway table)")
    args = ap.parse_args()
    if args.requests < 1 or args.threads < 1 or not 0 < args.new_share <= 1:
        ap.error("--requests and --threads must be >= 1, --new-share in (0, 1]")
    rng = random.Random(args.seed)
    warm = traffic(WARMUP, args.new_share, rng, first_episode=0)
    timed = traffic(args.requests, args.new_share, rng, first_episode=warm.new)

    with Client() as client:
        result = run_all(client, args, warm, timed)
    print(json.dumps(result))
    runs = [r for k, r in result.items() if k.startswith("receiver_") and "skipped" not in r]
    bad = [r for r in [result["noop"], *runs] if set(r["statuses"]) != {"200"}]
    if bad or not all(r["launches_match_episodes"] for r in runs):
        sys.exit("FAILED: a non-200 answer, or launches != distinct episodes sent")


def run_all(client: Client, args: argparse.Namespace, warm: Traffic, timed: Traffic) -> dict[str, Any]:
    per_request = timed.alerts // len(timed.bodies)
    with Served(noop_app()) as srv:
        client.drive(srv.url, warm.bodies, args.threads)
        base = summary(client.drive(srv.url, timed.bodies, args.threads), per_request)
    result: dict[str, Any] = {
        "requests": args.requests,
        "threads": args.threads,
        "alerts_per_request": per_request,
        "new_episode_requests": timed.new,
        "resend_requests": args.requests - timed.new,
        "noop": base,
        "receiver_memory": bench_receiver(client, MemorySpool(time.monotonic), warm, timed, args.threads, base),
    }
    if args.postgres:
        result["receiver_postgres"] = with_postgres(
            lambda s: bench_receiver(client, s, warm, timed, args.threads, base)
        )
    return result


if __name__ == "__main__":
    main()
