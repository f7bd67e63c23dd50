"""Typed settings: the cluster registry, PostgreSQL and the lab, from env and an optional YAML file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cassandra_recovery import plugins
from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.lease_heartbeat import check_heartbeat

ENV_PREFIX = "CASSANDRA_RECOVERY_"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG"
LAB_CLUSTER_ID = "lab"
_ID = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class NodeAccess(BaseModel):
    """How to reach one node: its CQL address and its JMX endpoint (for nodetool and metrics)."""

    model_config = {"frozen": True}

    name: str
    address: str
    datacenter: str | None = None
    rack: str | None = None
    jmx_host: str = "127.0.0.1"
    jmx_port: int = Field(default=7199, ge=1, le=65535)
    # This node's own JMX credentials, when they differ from the cluster's (see ClusterConfig).
    jmx_username: str | None = None
    jmx_password_file: str | None = None

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NODE_NAME.match(v):
            raise ValueError(f"invalid node name {v!r}")
        return v


class ReaperConfig(BaseModel):
    """A Cassandra Reaper that repairs this cluster: mitigation pauses its schedules and running repair runs while an
    incident owns the cluster, and resumes exactly those afterwards."""

    model_config = {"frozen": True, "hide_input_in_errors": True}  # a URL given with credentials is not echoed

    url: str  # its REST API's base, e.g. http://reaper:8080
    cluster_name: str  # the cluster's name in Reaper
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _url_ok(cls, v: str) -> str:
        if not re.match(r"^https?://[^/@\s]+(/\S*)?$", v):  # credentials belong in username/password, never the URL
            raise ValueError("invalid Reaper URL: http(s)://host[:port][/path], without credentials")
        return v.rstrip("/")


class ClusterConfig(BaseModel):
    """One cluster of the registry; every flow, lock, policy and schedule is keyed by its id."""

    model_config = {"frozen": True}

    id: str
    contact_points: list[str]
    port: int = Field(default=9042, ge=1, le=65535)
    local_datacenter: str
    nodes: list[NodeAccess]
    username: str | None = None
    password: SecretStr | None = None
    # JMX credentials for nodetool (and the JMX reads through its sjk): `-u USER -pwf FILE`, never the password on
    # argv. The file is nodetool's format, `USER PASSWORD` lines (a JMX password file works); or give the password
    # itself and each call writes it to a private temporary file. A node may name its own (NodeAccess).
    jmx_username: str | None = None
    jmx_password: SecretStr | None = None
    jmx_password_file: str | None = None
    # argv prefix that runs nodetool; `-h HOST -p PORT [-u USER -pwf FILE]` and the command are appended.
    nodetool_command: list[str] = Field(default_factory=lambda: ["nodetool"])
    nodetool_timeout_s: float = 120.0
    slack_channel: str | None = None
    # How much the runbook may do here: observe records and reports, never acts; propose asks for approval before
    # each side effect; act acts (a replacement still asks).
    automation: Literal["observe", "propose", "act"] = "act"
    # Who replaces a dead node once a person approved it: a registered provisioner by name (see plugins.py); `none`
    # fails the step with a clear error and the incident escalates. The lab's own is `lab`.
    provisioner: str = "none"
    # Optional: the Reaper whose schedules the incident mitigation pauses (and gives back).
    reaper: ReaperConfig | None = None

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"invalid cluster id {v!r}: lower-case letters, digits, '-' and '_'")
        return v

    @model_validator(mode="after")
    def _nodes_unique(self) -> ClusterConfig:
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate node names in cluster {self.id}: {names}")
        return self

    def node(self, ref: str) -> NodeAccess:
        """Find a node by name or address; ConfigError lists the known ones."""
        for n in self.nodes:
            if ref in (n.name, n.address):
                return n
        known = ", ".join(f"{n.name} ({n.address})" for n in self.nodes)
        raise ConfigError(f"unknown node {ref!r} in cluster {self.id}; known nodes: {known}")


class PostgresConfig(BaseModel):
    """Connection to the PostgreSQL source of truth and incident store."""

    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = "cassandra_recovery"
    user: str = "cassandra_recovery"
    password: SecretStr | None = None
    # Without a password: the registered source that supplies one (see plugins.py; the lab generates its own).
    password_source: str | None = "lab"  # noqa: S105 - the name of a source, not a password
    # The role that owns the schema (tables, functions, triggers) and runs `cassandra-recovery db upgrade`; the
    # processes connect as `user`, which gets only the privileges it uses (on the incident timeline: SELECT and
    # INSERT), so it can neither rewrite the timeline nor drop its append-only guard. None, or the same name as
    # `user`: one role for both, which works but lets the processes drop the guard (`db upgrade` says so).
    migration_user: str | None = "cassandra_recovery_owner"
    # Its password, for `db upgrade` only: given here (env), or the first line of a file (a mounted secret), or else
    # from `password_source` (the lab generates one per role); never in argv or logs.
    migration_password: SecretStr | None = None
    migration_password_file: Path | None = None
    # Server-side limits on every session (seconds, 0 = none): a hung query, a wait in a lock queue or a transaction
    # a stuck process left open ends, instead of holding a connection and its locks for good. `db upgrade` lifts
    # the statement and lock limits for its own session (storage/migrate.py).
    statement_timeout_s: float = Field(default=30.0, ge=0)
    lock_timeout_s: float = Field(default=10.0, ge=0)
    idle_in_transaction_timeout_s: float = Field(default=60.0, ge=0)
    # TCP keepalives: a connection whose server vanished (host down, network cut) fails after about
    # idle + interval x count seconds instead of waiting on the kernel's two hours.
    keepalives_idle_s: int = Field(default=30, ge=1)
    keepalives_interval_s: int = Field(default=10, ge=1)
    keepalives_count: int = Field(default=3, ge=1)

    @property
    def split_roles(self) -> bool:
        """True when a migration role of its own owns the schema (the runtime role cannot change it)."""
        return bool(self.migration_user) and self.migration_user != self.user

    def session_options(self) -> str:
        """libpq `options`: the session limits, set by the server at connect time (no extra round trip)."""
        limits = {
            "statement_timeout": self.statement_timeout_s,
            "lock_timeout": self.lock_timeout_s,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout_s,
        }
        return " ".join(f"-c {name}={round(s * 1000)}" for name, s in limits.items())

    def conninfo(self, password: str | None = None) -> str:
        from psycopg.conninfo import make_conninfo

        pw = password or (self.password.get_secret_value() if self.password else None)
        return make_conninfo(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=pw,
            options=self.session_options(),
            keepalives=1,
            keepalives_idle=self.keepalives_idle_s,
            keepalives_interval=self.keepalives_interval_s,
            keepalives_count=self.keepalives_count,
        )


def _default_lab_dir() -> Path:
    # Node users must traverse it, so not under root's private home; a user's own state dir otherwise.
    if os.geteuid() == 0:
        return Path("/var/lib/cassandra-recovery/lab")
    return Path.home() / ".local" / "state" / "cassandra-recovery" / "lab"


class LabConfig(BaseModel):
    """Where and how the local lab cluster runs."""

    base_dir: Path = Field(default_factory=_default_lab_dir)
    cassandra_version: str = "5.0.6"
    heap: str = "512m"
    user_prefix: str = "crlab-"
    # Shifts every node's address (127.0.0.2 + offset ..) and JMX port (7199 + 100 x offset ..), so a second lab
    # (its own base_dir and user_prefix) runs beside the first: CI runs its own-topology tests that way.
    address_offset: int = Field(default=0, ge=0, le=40)


_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


class DomainConfig(BaseModel):
    """The example `orders` domain: PostgreSQL source of truth, Cassandra read cache, outbox relay."""

    keyspace: str = "shop"
    cassandra_table: str = "orders"
    replication_factor: int = Field(default=3, ge=1, le=9)
    orders_table: str = "orders"
    outbox_table: str = "cache_outbox"
    policy_table: str = "degradation_policy"
    # Reads: a short client timeout plus a speculative second replica, so one hung node never
    # makes a read wait the driver's full timeout.
    read_timeout_s: float = Field(default=0.5, gt=0)
    speculative_delay_s: float = Field(default=0.1, gt=0)
    write_timeout_s: float = Field(default=2.0, gt=0)
    read_consistency: str = "LOCAL_QUORUM"
    write_consistency: str = "LOCAL_QUORUM"
    # Staleness bound: the cache may lag PostgreSQL by at most this; beyond it reads go to PostgreSQL.
    max_staleness_s: float = Field(default=5.0, gt=0)
    lag_cache_s: float = Field(default=0.5, ge=0)
    policy_cache_s: float = Field(default=2.0, ge=0)
    # Relay
    relay_batch: int = Field(default=200, ge=1, le=10_000)
    relay_lease_s: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)

    @field_validator("keyspace", "cassandra_table", "orders_table", "outbox_table", "policy_table")
    @classmethod
    def _ident_ok(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"invalid identifier {v!r}: lower-case letters, digits and '_', starting with a letter")
        return v

    @field_validator("read_consistency", "write_consistency")
    @classmethod
    def _cl_ok(cls, v: str) -> str:
        from cassandra import ConsistencyLevel

        if v.upper() not in ConsistencyLevel.name_to_value:
            raise ValueError(f"unknown consistency level {v!r}")
        return v.upper()


class PrefectConfig(BaseModel):
    """The project's persistent Prefect server (API + UI), backed by the project's PostgreSQL."""

    host: str = "127.0.0.1"
    port: int = Field(default=4200, ge=1, le=65535)
    database: str = "cassandra_recovery_prefect"
    # Prefect's basic auth ("user:password"); None leaves the API open (loopback only by default).
    auth_string: SecretStr | None = None
    # How often `serve` asks the server for runs to start (Prefect's default is 10 s): an alert's incident run, or a
    # resumed approval, waits up to this long before it starts. One small query per poll.
    runner_poll_s: int = Field(default=2, ge=1, le=60)
    # Prefect's own view of a dead host: served runs emit a heartbeat event this often, and an automation marks a
    # run Crashed after `zombie_after_s` without one (Prefect's minimum is 30 s; its documented window 60-90 s; a
    # wider one here, as the project's lease heartbeat already takes over in seconds and a busy server must not
    # crash a live run).
    flow_heartbeat_s: int = Field(default=30, ge=30, le=3600)
    zombie_after_s: int = Field(default=120, ge=60, le=86400)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by CASSANDRA_RECOVERY_CONFIG, when set."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_FILE_ENV)
        if not path:
            return {}
        try:
            data = yaml.safe_load(Path(path).read_text())
        except OSError as e:
            raise ConfigError(f"cannot read {CONFIG_FILE_ENV}={path}: {e}") from e
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        clusters = data.get("clusters")
        if isinstance(clusters, list):  # allow a list of clusters with ids
            data["clusters"] = {c["id"]: c for c in clusters}
        return data


class VerificationConfig(BaseModel):
    """Per-replica verification after recovery, and the runbook's follow-up check."""

    # A chunk is one traced read of one page per replica: bigger chunks, fewer waits for traces (narrowing stays
    # cheap). Memory: each worker holds one page of up to twice this many decoded rows, whatever the table's size.
    rows_per_chunk: int = Field(default=20000, ge=1, le=200_000)
    workers: int = Field(default=2, ge=1, le=64)
    # A ceiling on rows read per second over the whole pass (every replica's copy counts): 0 for none.
    rows_per_s: float = Field(default=0.0, ge=0)
    # Differing keys named per pass; past it, chunks stay un-narrowed and a fix repairs their ranges.
    max_diff_keys: int = Field(default=10_000, ge=1)
    preview: bool = True  # nodetool repair --preview --full as a second opinion
    max_fix_keys: int = Field(default=100, ge=0)  # more differing keys than this: repair instead
    # A replica's reads not yet proven its own (e.g. its dynamic snitch avoids it just after a restart) are retried
    # this long per pass; then the verdict is cannot_verify.
    proof_timeout_s: float = Field(default=60.0, gt=0)
    # "Monitor for 24 hours": the incident closes only when a verification this long after recovery passes;
    # 0 closes it right after the first passing verification.
    follow_up_s: float = Field(default=86400.0, ge=0)
    # A follow-up that finds the incident's lease held (a run joined it) tries again this much later.
    follow_up_retry_s: float = Field(default=300.0, gt=0)
    # The outage-scoped proof (verification/scoped.py): an incident with a follow-up verification is verified on
    # the keys PostgreSQL changed since the last observation that showed its nodes healthy; the follow-up then
    # reads the whole table at this pace (rows/s over every replica's copy; 0: unpaced).
    scoped: bool = True
    # How long before an outage was first seen its node may already have been missing writes: the interval of the
    # observation that saw it (Prometheus scrape + rule evaluation, the detector's confirmation), with a margin.
    observation_gap_s: float = Field(default=60.0, ge=0)
    # Changed keys closer than this many rows of the table (uniform tokens assumed) share one traced range read:
    # about what one more traced read costs.
    scoped_merge_rows: int = Field(default=2000, ge=0)
    # The proof's ranges are small (a few rows each): most of a read is the wait for its trace, so more are read
    # at once than a full pass's chunks (memory stays small: a worker holds one small range).
    scoped_workers: int = Field(default=8, ge=1, le=64)
    follow_up_rows_per_s: float = Field(default=50_000.0, ge=0)
    changes_retention_s: float = Field(default=7 * 86400.0, gt=0)  # change-log entries older than this are pruned
    # What a pass may hold in memory (MiB), whatever the table's size: the pages in flight, workers x twice
    # rows_per_chunk decoded rows at up to `row_kib` each (an order decodes to about 0.5 KiB), plus the keys of
    # differing chunks (max_diff_keys). A configuration that could exceed it is refused at start.
    memory_budget_mib: int = Field(default=256, ge=16)
    row_kib: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _within_budget(self) -> VerificationConfig:
        # (the outage-scoped proof reads more ranges at once, each proportionally smaller: the same rows in flight)
        pages = self.workers * 2 * self.rows_per_chunk * self.row_kib / 1024
        keys = self.max_diff_keys * 0.25 / 1024  # a key and its hash, about 256 bytes
        if pages + keys > self.memory_budget_mib:
            raise ValueError(
                f"verification would hold up to {pages + keys:.0f} MiB (workers x 2 x rows_per_chunk rows of "
                f"{self.row_kib} KiB, plus max_diff_keys), over memory_budget_mib {self.memory_budget_mib}: "
                "lower rows_per_chunk or workers, or raise the budget"
            )
        return self


class RepairScheduleConfig(BaseModel):
    """One routine repair schedule: a cron in a time zone, per cluster and keyspaces, with its pacing."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    cron: str = "0 3 * * *"
    interval_s: float | None = Field(default=None, gt=0)  # instead of the cron (tests compress time with it)
    kind: str = Field(default="incremental", pattern=r"^(incremental|full)$")
    cluster_id: str | None = None  # None: the default cluster
    keyspaces: list[str] | None = None  # None: every non-system keyspace
    timezone: str = "UTC"
    intensity: float = Field(default=0.5, gt=0, le=1)  # Reaper's: pause t*(1-i)/i after a segment of t s
    blackouts: list[str] = Field(default_factory=list)  # e.g. "Mon-Fri 08:00-18:00": no segment starts inside
    windows: list[str] = Field(default_factory=list)  # segments start only inside these (empty: any time)
    segments_per_range: int = Field(default=4, ge=1, le=1024)
    segment_timeout_s: float = Field(default=1800.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)


class PagingConfig(BaseModel):
    """Pages to a person about an incident the automation handed over (escalated): Slack's channel with @here, and
    an alert in Alertmanager (routed to the on-call pager like any other) when `alertmanager_url` is set."""

    alertmanager_url: str | None = None  # e.g. http://127.0.0.1:9093; None: Slack only
    # An escalated incident keeps routine repair from running; while a table's repair age is within this margin
    # of its gc_grace_seconds, routine repair runs anyway (unless a person holds it) and a page goes out every...
    repair_age_margin_s: float = Field(default=2 * 86400.0, ge=0)
    every_s: float = Field(default=4 * 3600.0, ge=60)  # ...this often (Alertmanager's default repeat_interval)
    alert_ttl_s: float = Field(default=4 * 3600.0, ge=60)  # the page alert's endsAt: it resolves unless re-sent


class RunbookConfig(BaseModel):
    """The incident runbook's bounds."""

    # A FAILED incident run (or an open incident nobody holds) is retried this many times, then escalated.
    max_run_retries: int = Field(default=2, ge=0, le=10)
    # The incident run's lease: renewed every heartbeat while the run works; a run that cannot renew before its
    # TTL runs out stops itself, and a dead or frozen holder's lease is free again a TTL later.
    lease_heartbeat_s: float = Field(default=5.0, gt=0, le=300)
    lease_ttl_s: float = Field(default=20.0, gt=0, le=3600)
    # The watchdog (inside every `serve`, and the `run-watchdog` deployment every `watchdog_every_s`) starts a run
    # for an open incident whose holder is gone and has no run left in Prefect, once it has sat so `watchdog_grace_s`.
    watchdog_grace_s: float = Field(default=60.0, ge=0, le=86400)
    watchdog_every_s: float = Field(default=300.0, ge=30, le=86400)
    # A repair running when the kill switch is set is cancelled inside Cassandra within about this (it asks the
    # switch this often); every other action reads the switch in the same transaction that records its start.
    kill_switch_check_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> RunbookConfig:
        try:
            check_heartbeat(self.lease_heartbeat_s, self.lease_ttl_s)
        except ValueError as e:
            raise ValueError(f"runbook: {e}") from e
        return self


def _default_schedules() -> list[RepairScheduleConfig]:
    return [
        RepairScheduleConfig(name="incremental-daily", cron="0 3 * * *", kind="incremental"),
        RepairScheduleConfig(name="full-weekly", cron="0 2 * * 0", kind="full"),
    ]


class ApprovalsConfig(BaseModel):
    """How a person answers an approval request (a node replacement; a plan at automation level `propose`)."""

    # An answer given in the Prefect UI form (a typed name nobody verified): `accept` records it as unverified;
    # `refuse` records the refusal and asks again, pointing to the Slack buttons (whose clickers are verified).
    prefect_ui: Literal["accept", "refuse"] = "accept"


class Settings(BaseSettings):
    """All settings; env (CASSANDRA_RECOVERY_*, nested with __) wins over the YAML file."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__")

    default_cluster: str = LAB_CLUSTER_ID
    # Where clusters come from besides `clusters`: registered sources by name (see plugins.py). The lab registers
    # itself through its own; a production install may set [] so the lab is never a candidate.
    cluster_sources: list[str] = Field(default_factory=lambda: [LAB_CLUSTER_ID])
    # Which registered workflow engine starts and serves runs (see cassandra_recovery/orchestrator.py).
    orchestrator: str = "prefect"
    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)
    postgres: PostgresConfig = Field(default_factory=PostgresConfig)
    lab: LabConfig = Field(default_factory=LabConfig)
    domain: DomainConfig = Field(default_factory=DomainConfig)
    prefect: PrefectConfig = Field(default_factory=PrefectConfig)
    verification: VerificationConfig = Field(default_factory=VerificationConfig)
    runbook: RunbookConfig = Field(default_factory=RunbookConfig)
    paging: PagingConfig = Field(default_factory=PagingConfig)
    repair_schedules: list[RepairScheduleConfig] = Field(default_factory=_default_schedules)
    # Slack Web API; without a token, notifications go to the log and the incident timeline.
    slack_token: SecretStr | None = None
    slack_base_url: str | None = None
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _ids_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("clusters"), dict):
            data["clusters"] = {k: ({"id": k, **v} if isinstance(v, dict) else v) for k, v in data["clusters"].items()}
        return data

    def cluster(self, cluster_id: str | None = None) -> ClusterConfig:
        """The configured cluster, else the one a cluster source provides (the lab registers itself as `lab`)."""
        cid = cluster_id or self.default_cluster
        if cid in self.clusters:
            return self.clusters[cid]
        sourced = self._sourced()
        if cid in sourced:
            return sourced[cid]
        known = ", ".join(sorted({*self.clusters, *sourced}))
        raise ConfigError(f"unknown cluster {cid!r}; registered clusters: {known}")

    def cluster_ids(self) -> set[str]:
        return {*self.clusters, *self._sourced()}

    def _sourced(self) -> dict[str, ClusterConfig]:
        out: dict[str, ClusterConfig] = {}
        for name in self.cluster_sources:
            source = plugins.load(plugins.CLUSTER_SOURCES, name, "cluster source")
            for c in source(self):
                out.setdefault(c.id, c)
        return out

    def postgres_conninfo(self) -> str:
        """Conninfo with the password from settings, or from its registered source (the lab's generated one)."""
        if self.postgres.password is None and self.postgres.password_source:
            name = self.postgres.password_source
            source = plugins.load(plugins.POSTGRES_PASSWORDS, name, "PostgreSQL password source")
            return self.postgres.conninfo(source(self))
        return self.postgres.conninfo()

    def migration_conninfo(self) -> str:
        """Conninfo of the role that owns the schema (`db upgrade`); the runtime's when the roles are not split.
        The password: `migration_password`, else the first line of `migration_password_file`, else the registered
        password source asked for that role, else none (libpq's own: PGPASSFILE, ~/.pgpass)."""
        pg = self.postgres
        if not pg.split_roles or pg.migration_user is None:
            return self.postgres_conninfo()
        password: str | None = None
        if pg.migration_password is not None:
            password = pg.migration_password.get_secret_value()
        elif pg.migration_password_file is not None:
            try:
                password = pg.migration_password_file.read_text().splitlines()[0].strip()
            except (OSError, IndexError) as e:
                raise ConfigError(f"cannot read postgres.migration_password_file {pg.migration_password_file}") from e
        elif pg.password_source:
            source = plugins.load(plugins.POSTGRES_PASSWORDS, pg.password_source, "PostgreSQL password source")
            password = source(self, pg.migration_user)
        return pg.model_copy(update={"user": pg.migration_user, "password": None}).conninfo(password)
