"""Migrations without a database: the refusal message, the names and version tables, what the package ships."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cassandra_recovery import cli
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.settings import DomainConfig, Settings
from cassandra_recovery.storage import migrate
from cassandra_recovery.storage.migrate import MIGRATIONS, TrackState, heads, known_revisions, refusal
from cassandra_recovery.storage.names import CORE, DOMAIN, INBOX_TABLE_ENV, SchemaNames
from tests import faults as F

pytestmark = pytest.mark.area("incident")
ROOT = Path(__file__).resolve().parents[2]


def _state(current: str | None, track: str = CORE) -> TrackState:
    return TrackState(track, SchemaNames().version_table(track), current, heads()[track])


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
@pytest.mark.parametrize(
    ("current", "says"),
    [
        (None, "has not been created or adopted yet: run `cassandra-recovery db upgrade`"),
        ("0000_older", "this version needs 0004_core_owner_role: run `cassandra-recovery db upgrade`"),
        ("9999_newer", "newer than this version of cassandra-recovery knows"),
    ],
)
def test_refusal_is_one_line_naming_what_to_run(current: str | None, says: str) -> None:
    known = known_revisions() | {"0000_older"}  # an older revision this code knows, as after a later release
    reason = refusal([_state(heads()[DOMAIN], DOMAIN), _state(current)], known)
    assert reason is not None and says in reason and "\n" not in reason and "(core)" in reason


def test_no_refusal_when_every_track_is_at_head() -> None:
    assert refusal([_state(heads()[CORE]), _state(heads()[DOMAIN], DOMAIN)], known_revisions()) is None


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
def test_cli_refuses_with_exit_1_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__PASSWORD", "unused-in-this-test")  # no lab password file
    monkeypatch.setattr(migrate, "states", lambda conninfo, names, tracks=(CORE, DOMAIN): [_state(None)])
    assert cli.main(["db", "check"]) == 1
    out = capsys.readouterr()
    assert out.err == "error: the PostgreSQL schema (core) has not been created or adopted yet: run" \
        " `cassandra-recovery db upgrade`\n" and out.out == ""  # fmt: skip


def test_each_track_has_its_baseline_and_the_scripts_ship_in_the_package() -> None:
    assert heads() == {CORE: "0004_core_owner_role", DOMAIN: "0004_domain_owner_role"}
    assert (MIGRATIONS / "env.py").is_file() and (MIGRATIONS / "script.py.mako").is_file()
    assert (MIGRATIONS / "__init__.py").is_file() and (MIGRATIONS / "versions" / "__init__.py").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "script.py.mako" in data["cassandra_recovery.storage.migrations"]  # .py files ship as package modules


def test_default_names_share_one_version_table_per_track_and_other_names_get_their_own() -> None:
    default = SchemaNames()
    assert (default.version_table(CORE), default.version_table(DOMAIN)) == (
        "cassandra_recovery_core_version",
        "cassandra_recovery_domain_version",
    )
    demo = SchemaNames(orders="orders_demo", outbox="outbox_demo", policy="policy_demo")
    assert demo.version_table(CORE) == default.version_table(CORE)  # same incidents and inbox
    assert demo.version_table(DOMAIN).startswith("cassandra_recovery_domain_version_")
    assert demo.version_table(DOMAIN) != default.version_table(DOMAIN)
    test = SchemaNames(incident_prefix="inc_t0123456789", inbox="alert_inbox_t0123456789")
    assert len(test.version_table(CORE)) <= 63 and test.version_table(CORE) != default.version_table(CORE)


@pytest.mark.parametrize(
    "names",
    [{"incident_prefix": "Inc"}, {"inbox": 'x"; DROP TABLE incidents; --'}, {"orders": ""}, {"policy": "a" * 49}],
)
def test_names_are_validated_identifiers(names: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        SchemaNames(**names)


def test_names_follow_the_settings_and_the_receivers_inbox_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INBOX_TABLE_ENV, "inbox_eu")
    s = Settings(domain=DomainConfig(orders_table="o2", outbox_table="q2", policy_table="p2"))
    assert SchemaNames.from_settings(s) == SchemaNames(inbox="inbox_eu", orders="o2", outbox="q2", policy="p2")
    assert SchemaNames.from_settings(s, inbox="explicit").inbox == "explicit"


@pytest.mark.fault(F.POSTGRES_DOWN)
def test_unreachable_postgres_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__PASSWORD", "unused-in-this-test")
    monkeypatch.setenv("CASSANDRA_RECOVERY_POSTGRES__PORT", "1")  # nothing listens: refused at once
    assert cli.main(["kill-switch", "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot check the schema version at 127.0.0.1:1/") and err.count("\n") == 1
    assert "unused-in-this-test" not in err


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION, F.POSTGRES_DOWN)
def test_the_receivers_deliverer_waits_for_a_current_schema_and_never_creates_one() -> None:
    """The receiver starts while PostgreSQL is away or old; its deliverer checks the version before each round
    until it passes, and delivers nothing before."""
    import time

    from cassandra_recovery.intake.memory import MemoryIncidents, MemorySpool, RecordingLauncher
    from cassandra_recovery.intake.metrics import ReceiverMetrics
    from cassandra_recovery.intake.ports import SpoolItem
    from cassandra_recovery.intake.service import Intake
    from cassandra_recovery.intake.wiring import _VersionFirstDeliverer
    from cassandra_recovery.storage.migrate import SchemaNotCurrent

    answers: list[Exception | None] = [SchemaNotCurrent("run `cassandra-recovery db upgrade`"), None]

    class Check:
        def __call__(self) -> None:
            if (answer := answers.pop(0)) is not None:
                raise answer

    spool, launcher = MemorySpool(time.monotonic), RecordingLauncher()
    intake = Intake(spool, MemoryIncidents(), launcher, ReceiverMetrics(), inline_timeout_s=1.0)
    spool.put(SpoolItem("k1", "launch-k1", "alertmanager", "lab", "firing", {"kind": "alert"}), hold_s=0)
    deliverer = _VersionFirstDeliverer(intake, 0.01, Check())  # type: ignore[arg-type]
    try:
        assert deliverer.run_once() == [] and "db upgrade" in (deliverer.last_error or "")
        assert spool.pending_count() == 1 and launcher.calls == []
        assert [o.ok for o in deliverer.run_once()] == [True] and deliverer.last_error is None
        deliverer.run_once()  # a further check would find no answer left and fail the round
        assert answers == [] and deliverer.last_error is None
    finally:
        intake.close()
