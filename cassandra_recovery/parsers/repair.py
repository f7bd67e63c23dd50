"""`nodetool repair`: command number, options, sessions and ranges, outcome, error, preview result, duration."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cassandra_recovery.errors import ParseError

COMMAND = "nodetool repair"

# Every progress notification is printed by RepairRunner as "[yyyy-MM-dd HH:mm:ss,SSS] message".
_LINE = re.compile(r"^\[(?P<ts>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3})\] (?P<msg>.*)$")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}"
_START = re.compile(
    rf"^Starting repair command #(?P<cmd>\d+) \((?P<parent>{_UUID})\), repairing keyspace (?P<ks>\S+) "
    r"with repair options \((?P<options>.*)\)$"
)
_OPTION = re.compile(r"(?P<key>[^:,]+?): (?P<value>\[[^\]]*\]|[^,]*)(?:, |$)")
_SESSION = re.compile(
    rf"^Repair session (?P<id>{_UUID}) for range \[(?P<ranges>.*)\] "
    r"(?:finished|failed with error (?P<error>.*?))(?: \(progress: (?P<progress>\d+)%\))?$"
)
_RANGE = re.compile(r"\((?P<start>-?\d+),(?P<end>-?\d+)\]")
_CMD_FAILED = re.compile(r"^Repair command #\d+ failed with error (?P<error>.*)$")
_CMD_FINISHED = re.compile(r"^Repair command #\d+ finished(?: in (?P<duration>.+)| with error)$")
# DurationFormatUtils.formatDurationWords: "0 seconds", "1 minute 5 seconds", "2 hours 0 minutes 1 second"...
_DURATION_PART = re.compile(r"(?P<n>\d+) (?P<unit>day|hour|minute|second)s?")
_UNIT_SECONDS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}
_SUCCESS = ("Repair completed successfully", "Repair preview completed successfully")
# Preview results (PreviewRepairTask): in sync for --preview / --validate respectively.
_IN_SYNC = ("Previewed data was in sync", "Repaired data is in sync")
# Out of sync: "Preview complete" / "Repaired data is inconsistent" followed by a multi-line summary
# starting "Total estimated streaming: N ranges, N sstables, X bytes" whose lines carry no timestamp.
# Wording from Cassandra's PreviewRepairTask/SyncStatSummary; not yet covered by a fixture.
_OUT_OF_SYNC = ("Preview complete", "Repaired data is inconsistent")
# RepairRunner's message when repairAsync returns 0; not yet covered by a fixture.
_NOTHING_TO_DO = re.compile(r"^Replication factor is 1\. No repair is needed for keyspace '(?P<ks>[^']+)'$")
_STREAMING = re.compile(
    r"^Total (?:estimated )?streaming: (?P<ranges>\d+) ranges, (?P<sstables>\d+) sstables, "
    r"(?P<size>.+) bytes$"
)


@dataclass(frozen=True)
class RepairSession:
    session_id: str
    ranges: list[tuple[int, int]]  # (start, end] as printed; a range may wrap around the ring
    progress: int | None  # percent of progress events, not of sessions
    error: str | None  # set when the session line says "failed with error"

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RepairOutcome:
    command_number: int | None  # None when nodetool failed before the repair started
    parent_session_id: str | None
    keyspace: str | None
    options_raw: str | None
    options: dict[str, str]
    sessions: list[RepairSession]
    success: bool
    finished: bool  # a completion or "finished" line was printed (False when nodetool was cut short)
    error: str | None
    stderr_error: str | None  # the `error:` line nodetool prints on stderr
    preview_in_sync: bool | None  # None when this was not a preview/validate repair
    preview_summary: list[str] = field(default_factory=list)  # out-of-sync streaming estimate lines
    duration_seconds: int | None = None
    messages: list[str] = field(default_factory=list)  # every timestamped message, in order

    def _option(self, key: str) -> str | None:
        return self.options.get(key)

    @property
    def parallelism(self) -> str | None:
        return self._option("parallelism")

    @property
    def primary_range(self) -> bool | None:
        value = self._option("primary range")
        return None if value is None else value == "true"

    @property
    def incremental(self) -> bool | None:
        value = self._option("incremental")
        return None if value is None else value == "true"

    @property
    def preview_kind(self) -> str | None:
        return self._option("previewKind")

    @property
    def range_count(self) -> int | None:
        value = self._option("# of ranges")
        return int(value) if value is not None and value.isdigit() else None


def _options(raw: str, text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    pos = 0
    for m in _OPTION.finditer(raw):
        if m.start() != pos:
            break
        options[m.group("key")] = m.group("value")
        pos = m.end()
    # Refuse rather than silently drop options if the list has a shape the regex does not cover.
    if pos != len(raw):
        raise ParseError(COMMAND, f"cannot split repair options at {raw[pos : pos + 40]!r}", text)
    return options


def _ranges(raw: str, text: str) -> list[tuple[int, int]]:
    ranges = [(int(m.group("start")), int(m.group("end"))) for m in _RANGE.finditer(raw)]
    if _RANGE.sub("", raw).replace(",", "").strip():
        raise ParseError(COMMAND, f"unexpected token range list {raw[:80]!r}", text)
    return ranges


def _duration(raw: str, text: str) -> int:
    parts = list(_DURATION_PART.finditer(raw))
    if not parts or _DURATION_PART.sub("", raw).strip():
        raise ParseError(COMMAND, f"unexpected duration {raw!r}", text)
    return sum(int(p.group("n")) * _UNIT_SECONDS[p.group("unit")] for p in parts)


def _stderr_error(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if line.startswith("error: "):
            return line[len("error: ") :].strip()
    return None


def parse_repair(stdout: str, stderr: str = "") -> RepairOutcome:
    start: re.Match[str] | None = None
    keyspace: str | None = None
    sessions: list[RepairSession] = []
    messages: list[str] = []
    summaries: list[list[str]] = []
    error: str | None = None
    succeeded = finished = in_summary = False
    in_sync: bool | None = None
    duration: int | None = None
    for raw in stdout.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        m = _LINE.match(line)
        if m is None:
            # Only the multi-line preview summary continues a notification without a timestamp.
            if not in_summary:
                raise ParseError(COMMAND, f"unexpected line {line!r}", stdout)
            if not summaries[-1] and not _STREAMING.match(line.strip()):
                raise ParseError(COMMAND, f"unexpected preview summary {line!r}", stdout)
            summaries[-1].append(line.strip())
            continue
        in_summary = False
        msg = m.group("msg")
        messages.append(msg)
        if sm := _START.match(msg):
            # `nodetool repair` without a keyspace runs one command per keyspace; callers repair one at a time.
            if start is not None:
                raise ParseError(COMMAND, "several repair commands in one output; repair one keyspace per call", stdout)
            start, keyspace = sm, sm.group("ks")
        elif sm := _NOTHING_TO_DO.match(msg):
            keyspace, succeeded, finished = sm.group("ks"), True, True
        elif sm := _SESSION.match(msg):
            progress = sm.group("progress")
            sessions.append(
                RepairSession(
                    sm.group("id"),
                    _ranges(sm.group("ranges"), stdout),
                    None if progress is None else int(progress),
                    sm.group("error"),
                )
            )
        elif sm := _CMD_FAILED.match(msg):
            error = error or sm.group("error")
        elif sm := _CMD_FINISHED.match(msg):
            finished = True
            if sm.group("duration") is not None:
                duration = _duration(sm.group("duration"), stdout)
        if msg.startswith(_SUCCESS):
            succeeded = finished = True
        # Preview results are appended to the success message too, so test by containment.
        if any(s in msg for s in _IN_SYNC):
            in_sync = True
        if any(msg.endswith(s) for s in _OUT_OF_SYNC):
            # The summary is repeated with each later success message; the first copy is kept.
            in_sync, in_summary = False, True
            summaries.append([])

    stderr_error = _stderr_error(stderr)
    if not stdout.strip() and stderr_error is None:
        raise ParseError(COMMAND, "no repair output and no error on stderr", stdout + stderr)
    if stdout.strip() and keyspace is None:
        raise ParseError(COMMAND, "no 'Starting repair command' line", stdout)
    session_error = next((s.error for s in sessions if s.error is not None), None)
    error = error or session_error or stderr_error
    options_raw = start.group("options") if start else None
    return RepairOutcome(
        command_number=int(start.group("cmd")) if start else None,
        parent_session_id=start.group("parent") if start else None,
        keyspace=keyspace,
        options_raw=options_raw,
        options=_options(options_raw, stdout) if options_raw is not None else {},
        sessions=sessions,
        success=succeeded and error is None,
        finished=finished,
        error=error,
        stderr_error=stderr_error,
        preview_in_sync=in_sync,
        preview_summary=summaries[0] if summaries else [],
        duration_seconds=duration,
        messages=messages,
    )
