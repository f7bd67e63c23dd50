"""Per-replica convergence of one table: every replica's copy of every chunk against the source of truth (or,
for tables it does not hold, against the copy most replicas agree on), differing chunks narrowed to keys, and
`nodetool repair --preview --full` as a replica-level second opinion."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from cassandra_recovery.assessment.inputs import ring
from cassandra_recovery.clients.cql import CqlClient
from cassandra_recovery.clients.nodetool import Nodetool
from cassandra_recovery.contracts import VerificationReportDoc
from cassandra_recovery.detection.observe import probe_all
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.checksum import ChunkSum, diff_keys
from cassandra_recovery.logic.convergence import ReplicaChunk, Verdict, judge
from cassandra_recovery.logic.narrowing import Range, Side, Summary, narrow
from cassandra_recovery.logic.pacing import RowPacer
from cassandra_recovery.logic.replication import TokenRange, replication_from, token_ranges
from cassandra_recovery.logic.verify_plan import Chunk, plan_chunks, reference
from cassandra_recovery.progress import counted
from cassandra_recovery.settings import ClusterConfig
from cassandra_recovery.settings import VerificationConfig as VerificationSettings
from cassandra_recovery.verification.preview import preview
from cassandra_recovery.verification.replica import ReplicaReader, Unproven
from cassandra_recovery.verification.tables import TableSpec
from cassandra_recovery.verification.truth import SourceOfTruth

log = logging.getLogger(__name__)
MAX_KEYS_LISTED = 1000


@dataclass(frozen=True)
class VerifyConfig:
    """A chunk is read from each replica in one page (twice its expected rows): each page is a request of its
    own that the dynamic snitch may send to another replica, so a chunk read in several pages is more often
    unprovable. Memory: each worker holds one decoded page at a time and nothing per row outlives it, so a pass's
    peak is about workers x page_rows() decoded rows, whatever the table's size, plus the keys of differing
    chunks (at most `max_diff_keys`). Speed: bigger chunks mean fewer waits for traces; `rows_per_s` caps the
    rows read per second over the pass (0: none)."""

    target_rows_per_chunk: int = 20000
    chunks_per_range: int = 4  # without a source of truth (table size unknown)
    fanout: int = 16
    leaf_rows: int = 256
    preview: bool = True
    workers: int = 2  # chunks read at once
    proof_timeout_s: float = 60.0  # how long reads of a replica not yet proven its own are retried
    rows_per_s: float = 0.0
    max_diff_keys: int = 10_000

    @classmethod
    def from_settings(cls, v: VerificationSettings, **overrides: Any) -> VerifyConfig:
        fields = {
            "target_rows_per_chunk": v.rows_per_chunk,
            "preview": v.preview,
            "proof_timeout_s": v.proof_timeout_s,
            "workers": v.workers,
            "rows_per_s": v.rows_per_s,
            "max_diff_keys": v.max_diff_keys,
        }
        return cls(**(fields | overrides))

    def page_rows(self) -> int:
        return 2 * self.target_rows_per_chunk


@dataclass
class ReplicaDiff:
    replica: str
    chunk: Range
    missing: list[str] = field(default_factory=list)  # in the truth, not on this replica
    extra: list[str] = field(default_factory=list)  # on this replica, not in the truth
    different: list[str] = field(default_factory=list)
    leaves: list[Range] = field(default_factory=list)
    narrowed: bool = True  # False: keys could not be named (a read was not proven)
    note: str = ""
    summaries: int = 0  # server-side summaries asked of each side while narrowing
    rows_listed: int = 0  # rows read back at the leaves (both sides)

    @property
    def keys(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.different)


@dataclass
class VerificationReport:
    cluster: str
    keyspace: str
    table: str
    verdict: str
    reference: str  # "postgresql" or "replica majority"
    chunks: int = 0
    rows_compared: int = 0  # replica rows compared (each replica's rows count)
    rows_truth: int = 0
    down: list[str] = field(default_factory=list)
    diffs: list[ReplicaDiff] = field(default_factory=list)
    unverified: list[dict[str, Any]] = field(default_factory=list)
    preview: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)
    reads: int = 0
    probes: int = 0  # one-row reads showing where a chunk's big read would be served (see replica.py)
    latency_refreshes: int = 0  # replicas whose dynamic snitch sent pinned reads elsewhere, refreshed (see replica.py)
    rows_read: int = 0  # rows the client received from replicas (chunk reads and narrowing)
    narrowing_rows_listed: int = 0
    elapsed_s: float = 0.0
    # Per node: its clock minus the tool's (ms) and the uncertainty; last-write-wins depends on these clocks.
    clock_skew: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The outage-scoped proof's plan (verification/scoped.py), or why the full pass was read instead; None: a full
    # pass was asked for.
    scope: dict[str, Any] | None = None

    @property
    def converged(self) -> bool:
        return self.verdict == Verdict.CONVERGED

    def keys(self, kind: str) -> list[str]:
        return sorted({k for d in self.diffs for k in getattr(d, kind)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VerificationReport:
        """Back from as_dict (through a Prefect result): what a fix needs, key lists as far as they were kept."""
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k != "diffs"}
        diffs = [
            ReplicaDiff(
                x["replica"],
                (int(x["chunk"][0]), int(x["chunk"][1])),
                list(x["missing"]),
                list(x["extra"]),
                list(x["different"]),
                [(int(a), int(b)) for a, b in x["leaves"]],
                bool(x["narrowed"]),
                str(x["note"]),
                int(x.get("summaries", 0)),
                int(x.get("rows_listed", 0)),
            )
            for x in d.get("diffs", [])
        ]
        return cls(**fields, diffs=diffs)

    def as_dict(self) -> VerificationReportDoc:
        d = asdict(self)
        d["converged"] = self.converged
        d["mismatches"] = len(self.diffs)
        d["replicas"] = sorted({x.replica for x in self.diffs})
        d["keys"] = {k: self.keys(k)[:MAX_KEYS_LISTED] for k in ("missing", "extra", "different")}
        for x in d["diffs"]:
            x["chunk"] = [str(v) for v in x["chunk"]]
            x["leaves"] = [[str(a), str(b)] for a, b in x["leaves"]][:50]
            for k in ("missing", "extra", "different"):
                x[k] = x[k][:MAX_KEYS_LISTED]
        return cast(VerificationReportDoc, d)  # asdict is untyped; the fields above and the ones added


class Verifier:
    def __init__(
        self,
        cluster: ClusterConfig,
        cql: CqlClient,
        spec: TableSpec,
        truth: SourceOfTruth | None,
        config: VerifyConfig = VerifyConfig(),
        reader: ReplicaReader | None = None,
        nodetool: Nodetool | None = None,
        progress: Callable[[str], None] = log.info,
    ):
        if spec.has_truth and truth is None:
            raise ConfigError(f"{spec.name} is compared with PostgreSQL but no source of truth was given")
        self.cluster = cluster
        self.cql = cql
        self.spec = spec
        self.truth = truth if spec.has_truth else None
        self.config = config
        pacer = RowPacer(config.rows_per_s)
        self.reader = reader or ReplicaReader(
            cql, spec, page_size=config.page_rows(), proof_timeout_s=config.proof_timeout_s, pacer=pacer
        )
        self.nodetool = nodetool or Nodetool(cluster)
        self.progress = progress

    def run(
        self,
        scope: Sequence[TokenRange] | None = None,
        live: set[str] | None = None,
        chunks: Sequence[Chunk] | None = None,
    ) -> VerificationReport:
        """`live`: the nodes that answer (probed when not given). `chunks`: exactly these (an outage-scoped proof)
        instead of the chunks of `scope`'s ranges; no preview is run for them."""
        t0 = time.monotonic()
        rep = VerificationReport(
            self.cluster.id,
            self.spec.keyspace,
            self.spec.table,
            Verdict.CANNOT_VERIFY,
            "postgresql" if self.truth else "replica majority",
        )
        if live is None:
            probes = probe_all(self.cluster, timeout_s=1.0)
            live = {n.address for n in self.cluster.nodes if probes[n.name].ok}
        if not live:
            rep.reasons.append("no node answers: nothing can be read")
            return rep
        if hasattr(self.reader, "coordinators"):
            self.reader.coordinators = sorted(live)
        ranges: list[TokenRange] = []
        if chunks is None:
            observer = sorted(live)[0]
            ranges = list(scope) if scope is not None else keyspace_ranges(self.cql, observer, self.spec.keyspace)
            total = self.truth.total_rows() if self.truth else None
            chunks = plan_chunks(ranges, total, self.config.target_rows_per_chunk, self.config.chunks_per_range)
        rep.chunks = len(chunks)
        rep.down = sorted({r for c in chunks for r in c.replicas} - live)
        truth_map: dict[Range, Summary] = {}
        per_replica: dict[str, dict[Range, ReplicaChunk]] = {}

        def read(chunk: Chunk) -> tuple[dict[str, ChunkSum], dict[str, str], ChunkSum | None]:
            sums, why = self.reader.chunk_sums(chunk.start, chunk.end, chunk.replicas, live)
            return sums, why, None if self.truth is None else self.truth.chunk(chunk.start, chunk.end)

        # Chunks are read a few at a time: most of a traced read's time is the wait for its trace, not work.
        with ThreadPoolExecutor(max_workers=self.config.workers) as pool:
            results = pool.map(read, chunks)
            for i, (chunk, (sums, why, c)) in enumerate(zip(chunks, results, strict=True)):
                self._judge_chunk(chunk, sums, why, c, live, rep, truth_map, per_replica)
                if (i + 1) % 16 == 0 or i + 1 == len(chunks):
                    line = f"verify {self.spec.name}: {i + 1}/{len(chunks)} chunks read"
                    counted(self.progress, f"verify {self.spec.name}: chunks read", i + 1, len(chunks), line)
        verdict = judge(truth_map, per_replica, down=rep.down)
        rep.rows_compared = verdict.rows_compared
        rep.reasons += verdict.reasons
        rep.unverified = [
            {"chunk": [str(a), str(b)], "replica": r, "reason": why} for (a, b), r, why in verdict.unverified
        ]
        by_range = {c.range: c for c in chunks}
        named = 0
        for m in verdict.mismatches:
            if named >= self.config.max_diff_keys:  # bounded memory and report: the fix repairs what is not named
                note = f"not narrowed: {named} differing keys were named already (cap: verification.max_diff_keys)"
                rep.diffs.append(ReplicaDiff(m.replica, m.chunk, narrowed=False, note=note))
                continue
            rep.diffs.append(self._narrow(by_range[m.chunk], m.replica, live))
            named += rep.diffs[-1].keys
        if named >= self.config.max_diff_keys:
            rep.reasons.append(f"over {self.config.max_diff_keys} differing keys: only the first chunks were narrowed")
        rep.narrowing_rows_listed = sum(d.rows_listed for d in rep.diffs)
        rep.verdict = verdict.verdict
        if self.config.preview and ranges:
            rep.preview = self._preview(ranges, rep)
        rep.reads, rep.rows_read = self.reader.reads, self.reader.rows_read
        rep.probes = getattr(self.reader, "probes", 0)
        rep.latency_refreshes = getattr(self.reader, "refreshes", 0)
        rep.elapsed_s = round(time.monotonic() - t0, 2)
        return rep

    def _judge_chunk(
        self,
        chunk: Chunk,
        sums: dict[str, ChunkSum],
        why: dict[str, str],
        c: ChunkSum | None,
        live: set[str],
        rep: VerificationReport,
        truth_map: dict[Range, Summary],
        per_replica: dict[str, dict[Range, ReplicaChunk]],
    ) -> None:
        want: Summary | None
        if c is not None:
            want = Summary(c.count, c.checksum)
            rep.rows_truth += c.count
        else:
            ref = reference({r: Summary(s.count, s.checksum) for r, s in sums.items()})
            want = ref if isinstance(ref, Summary) else None
        for r in chunk.replicas:
            if r not in live:
                continue
            s = sums.get(r)
            got = ReplicaChunk(None if s is None else Summary(s.count, s.checksum), s is not None, why.get(r, ""))
            if want is None:  # no majority among the replicas: nothing to judge this chunk against
                got = ReplicaChunk(None, False, "replicas disagree and no majority copy exists")
            per_replica.setdefault(r, {})[chunk.range] = got
        truth_map[chunk.range] = want or Summary(-1, -1)

    def _truth_side(self, chunk: Chunk, replica: str, live: set[str]) -> Side:
        if self.truth is not None:
            return Side(self.truth.summary, self.truth.rows)
        others = [r for r in chunk.replicas if r != replica and r in live]
        if not others:
            raise Unproven(f"no other live replica of {chunk.range} to compare {replica} with")
        ref = others[0]
        return Side(
            lambda a, b: self.reader.summary(a, b, ref, chunk.replicas),
            lambda a, b: self.reader.rows(a, b, ref, chunk.replicas),
        )

    def _narrow(self, chunk: Chunk, replica: str, live: set[str]) -> ReplicaDiff:
        """Keys that differ on `replica` in `chunk`: summaries of ever smaller subranges, rows only at the leaves."""
        out = ReplicaDiff(replica, chunk.range)
        try:
            truth = self._truth_side(chunk, replica, live)
            other = Side(
                lambda a, b: self.reader.summary(a, b, replica, chunk.replicas),
                lambda a, b: self.reader.rows(a, b, replica, chunk.replicas),
            )
            res = narrow([chunk.range], truth, other, self.config.fanout, self.config.leaf_rows)
            diff, out.leaves = res.diff, res.leaves
            out.summaries, out.rows_listed = res.summaries, res.rows_listed
            if not (diff.missing or diff.extra or diff.different):
                # Same counts and version sums but different row hashes (content changed without a version bump):
                # the summaries cannot see it, so the whole chunk is listed.
                ra, rb = truth.rows(*chunk.range), other.rows(*chunk.range)
                out.rows_listed += len(ra) + len(rb)
                diff = diff_keys(dict(ra), dict(rb))
                out.leaves = [chunk.range]
                out.note = "summaries agreed; the whole chunk was listed"
        except Unproven as e:
            out.narrowed = False
            out.note = f"keys not named: {e}"
            return out
        out.missing, out.extra, out.different = diff.missing, diff.extra, diff.different
        return out

    def _preview(self, ranges: Sequence[TokenRange], rep: VerificationReport) -> dict[str, Any]:
        if rep.down:
            return {"ran": False, "in_sync": None, "reason": f"replicas down: {', '.join(rep.down)}"}
        res = preview(self.nodetool, self.spec.keyspace, self.spec.table, ranges)
        in_sync = res["in_sync"]
        if rep.verdict == Verdict.CONVERGED and in_sync is not True:
            rep.verdict = Verdict.CANNOT_VERIFY
            failed = [f"({x['range'][0]}, {x['range'][1]}]: {x.get('error') or x.get('summary')}" for x in res["ranges"]
                      if x["in_sync"] is not True]  # fmt: skip
            rep.reasons.append(f"the preview repair does not confirm the replicas are in sync: {'; '.join(failed)}")
        if rep.verdict == Verdict.DIVERGED and in_sync is True and self.truth is not None:
            rep.reasons.append("the replicas agree with one another (preview in sync) but not with PostgreSQL")
        return res


def keyspace_ranges(cql: CqlClient, observer: str, keyspace: str) -> list[TokenRange]:
    """The keyspace's ring ranges with their replicas, from the observer's schema and ring."""
    rows = cql.execute_on(
        observer, "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
    )
    if not rows:
        raise ConfigError(f"keyspace {keyspace} does not exist")
    options = dict(rows[0]["replication"])
    rep = replication_from(options.pop("class"), options)
    if rep is None:
        raise ConfigError(f"keyspace {keyspace}: replication {rows[0]['replication']} is not supported")
    return token_ranges(ring(cql, observer), rep)
