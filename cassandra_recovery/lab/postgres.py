"""Local PostgreSQL for the lab: install, start and provision it through Debian's cluster tools."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import stringprep
import subprocess
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from cassandra_recovery.clients.child_env import PROXY, child_env
from cassandra_recovery.errors import CommandError, ConfigError, LabError, ParseError, ToolMissingError
from cassandra_recovery.lab.secret_file import write_new_secret

if TYPE_CHECKING:
    from cassandra_recovery.settings import LabConfig, Settings

Progress = Callable[[str], None]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_VERSION = re.compile(r"^\d+(\.\d+)?$")
_PG_LIB = Path("/usr/lib/postgresql")
_PG_LOG_DIR = Path("/var/log/postgresql")
_READY_TIMEOUT_S = 60.0
_SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
# RFC 4013 prohibited output: unassigned code points, non-ASCII spaces, controls, private use, surrogates...
_SASL_PROHIBITED = [getattr(stringprep, f"in_table_{t}") for t in "a1 c12 c21_c22 c3 c4 c5 c6 c7 c8 c9".split()]


@dataclass(frozen=True)
class PgCluster:
    """One line of `pg_lsclusters`."""

    version: str
    name: str
    port: int
    status: str  # "online" or "down", possibly followed by ",recovery", ",binaries_missing"...
    owner: str
    data_dir: str
    log_file: str

    @property
    def online(self) -> bool:
        return self.status.split(",")[0] == "online"


def parse_lsclusters(text: str) -> list[PgCluster]:
    """Parse `pg_lsclusters --no-header` output (a header line is tolerated); ParseError on unknown layouts."""
    clusters = []
    for line in text.splitlines():
        if not line.strip() or line.split()[:2] == ["Ver", "Cluster"]:
            continue
        # The log column comes last and may contain spaces (e.g. "syslog" destinations), so split 6 times at most.
        f = line.split(None, 6)
        if (
            len(f) != 7
            or not _VERSION.match(f[0])
            or not f[2].isdigit()
            or f[3].split(",")[0] not in ("online", "down")
        ):
            raise ParseError("pg_lsclusters --no-header", f"unexpected line {line!r}", text)
        clusters.append(PgCluster(f[0], f[1], int(f[2]), f[3], f[4], f[5], f[6]))
    return clusters


def lab_password_for(settings: Settings, role: str | None = None) -> str:
    """The lab's PostgreSQL password source (registered as `lab`, see plugins.py): the runtime role's, or with
    `role` the password of that other role (the migration role that owns the schema)."""
    return lab_password(settings.lab, role)


def lab_password(lab: LabConfig, role: str | None = None) -> str:
    """The lab's generated PostgreSQL password (file mode 0600), created on first call and reused afterwards; one
    file per role: `postgres.password` for the runtime role, `postgres.<role>.password` for another one."""
    name = "postgres.password" if role is None else f"postgres.{_ident(role, 'migration_user')}.password"
    path = lab.base_dir / name
    password = path.read_text().strip() if path.exists() else ""
    if password:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return password
    written = write_new_secret(lab.base_dir, path, lambda p: p + "\n")
    return lab_password(lab, role) if written is None else written


def _quiet(_msg: str) -> None:
    """Default progress callback."""


def _run(
    argv: Sequence[str],
    timeout: float = 120,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run argv with LANG=C (stable messages) from / (the postgres user cannot enter root's cwd)."""
    full_env = child_env(PROXY, extra={"LANG": "C", "LC_ALL": "C", **(env or {})})
    try:
        proc = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, env=full_env, cwd="/"
        )
    except subprocess.TimeoutExpired as e:
        out, err = (x.decode(errors="replace") if isinstance(x, bytes) else x or "" for x in (e.stdout, e.stderr))
        raise CommandError(argv, None, out, err, reason="timed out") from e
    except FileNotFoundError as e:
        raise ToolMissingError(f"{argv[0]} is missing; install it with: apt-get install -y postgresql") from e
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _ident(value: str, what: str) -> str:
    if not _IDENT.match(value):  # also keeps names out of reach of psql and SQL quoting
        raise ConfigError(f"invalid postgres {what} {value!r}: must match {_IDENT.pattern}")
    return value


def _saslprep(password: str) -> str:
    """RFC 4013 SASLprep as PostgreSQL applies it: ASCII as is, prohibited input hashed raw."""
    if password.isascii():
        return password
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in password if not stringprep.in_table_b1(c))
    prepped = unicodedata.normalize("NFKC", mapped)
    ral = [stringprep.in_table_d1(c) for c in prepped]
    bad_bidi = any(ral) and (any(stringprep.in_table_d2(c) for c in prepped) or not (ral[0] and ral[-1]))
    if not prepped or bad_bidi or any(t(c) for c in prepped for t in _SASL_PROHIBITED):
        return password
    return prepped


def _scram_secret(password: str) -> str:
    """A SCRAM-SHA-256 verifier, as libpq's PQencryptPasswordConn builds it."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, _SCRAM_ITERATIONS)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = [base64.b64encode(b).decode() for b in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64[0]}${b64[1]}:{b64[2]}"


# Why this shape: the password is sent as a SCRAM verifier computed here, so the plaintext reaches neither
# argv, psql, nor the server log (even a failing statement is logged with its text); the verifier only holds
# base64, digits, '$' and ':' and is safe inside a literal. Names come as psql variables quoted by :'v'/%I and
# are validated first. CREATE DATABASE cannot run in a transaction or DO block, hence \gexec, which runs each
# generated statement on its own in autocommit mode.
_ROLE_SQL = """\
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\\gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD '{secret}';
"""
# With a migration role of its own (settings.postgres.migration_user): that role owns the project's database, so
# its `public` schema (owned by pg_database_owner) and every object `db upgrade` creates there; the runtime role
# owns only the Prefect database. The migration role is made a member of the runtime role (never the other way
# round) so that the 0004 migrations can take over the tables an older lab's runtime role created. An existing
# database owned by the runtime role is handed over here (idempotent); its tables by `db upgrade`.
_OWNER_SQL = """\
SELECT format('CREATE ROLE %I LOGIN', :'owner') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner')
\\gexec
ALTER ROLE :"owner" WITH LOGIN PASSWORD '{secret}';
GRANT :"role" TO :"owner";
"""
_DB_SQL = """\
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\\gexec
ALTER DATABASE :"db" OWNER TO :"owner";
SELECT format('CREATE DATABASE %I OWNER %I', :'prefect_db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'prefect_db')
\\gexec
"""


def _clusters(port: int | None = None) -> list[PgCluster]:
    found = parse_lsclusters(_run(["pg_lsclusters", "--no-header"], timeout=30).stdout)
    return [c for c in found if port in (None, c.port)]


def _install(say: Progress) -> None:
    if shutil.which("pg_ctlcluster") and shutil.which("pg_lsclusters"):
        return
    if os.geteuid() != 0:
        raise ToolMissingError("PostgreSQL is missing; install it with: apt-get install -y postgresql")
    say("postgres: installing PostgreSQL with apt-get")
    # UTF-8 locale: the package creates its first cluster, and initdb under LANG=C would pick SQL_ASCII.
    env = {"DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    install = ["apt-get", "install", "-y", "postgresql"]
    if _run(install, timeout=1800, env=env, check=False).returncode != 0:
        _run(["apt-get", "update"], timeout=600, env=env)  # fresh images ship without package lists
        _run(install, timeout=1800, env=env)


def _create_cluster(port: int, say: Progress) -> PgCluster:
    versions = [d.name for d in _PG_LIB.glob("*") if _VERSION.match(d.name) and (d / "bin" / "postgres").exists()]
    if not versions:
        raise ToolMissingError(f"no PostgreSQL server under {_PG_LIB}; install it with: apt-get install -y postgresql")
    version = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    name = "main" if all(c.name != "main" for c in _clusters() if c.version == version) else throwaway_name(port)
    say(f"postgres: creating cluster {version}/{name} on port {port}")
    _run(["pg_createcluster", "--locale=C.UTF-8", "-p", str(port), version, name], timeout=300)
    return _clusters(port)[0]


def _log_tail(c: PgCluster, lines: int = 30) -> str:
    log = Path(c.log_file) if c.log_file.startswith("/") else _PG_LOG_DIR / f"postgresql-{c.version}-{c.name}.log"
    try:
        return f"--- tail of {log} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(cannot read {log}: {e})"


def _wait_ready(c: PgCluster) -> None:
    argv = ["pg_isready", "-q", "-t", "5", "-h", "127.0.0.1", "-p", str(c.port)]
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while _run(argv, timeout=15, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise LabError(
                f"postgres: cluster {c.version}/{c.name} does not accept connections on "
                f"127.0.0.1:{c.port} after {_READY_TIMEOUT_S:.0f} s\n{_log_tail(c)}"
            )
        time.sleep(0.5)


def ensure_postgres(settings: Settings, progress: Progress | None = None) -> None:
    """Install, start and provision the local PostgreSQL (role and database); safe to call again."""
    say = progress or _quiet
    pg = settings.postgres
    role, db = _ident(pg.user, "user"), _ident(pg.dbname, "dbname")
    owner = _ident(pg.migration_user, "migration_user") if pg.split_roles and pg.migration_user else role
    password = pg.password.get_secret_value() if pg.password else lab_password(settings.lab)
    _install(say)
    cluster = next(iter(_clusters(pg.port)), None) or _create_cluster(pg.port, say)
    if not cluster.online:
        say(f"postgres: starting cluster {cluster.version}/{cluster.name}")
        # As root: the Debian wrapper switches to the postgres user, which the server insists on.
        _run(["pg_ctlcluster", cluster.version, cluster.name, "start"], timeout=120)
    _wait_ready(cluster)
    say(f"postgres: cluster {cluster.version}/{cluster.name} on port {cluster.port} online")
    psql = [
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-v",
        "ON_ERROR_STOP=1",
        "-X",
        "-q",
        "-d",
        "postgres",
        "-p",
        str(cluster.port),
        "-v",
        f"role={role}",
        "-v",
        f"db={db}",
        "-v",
        f"owner={owner}",
        "-v",
        f"prefect_db={_ident(settings.prefect.database, 'prefect database')}",
        "-f",
        "-",
    ]
    script = _ROLE_SQL.format(secret=_scram_secret(password))
    if owner != role:
        script += _OWNER_SQL.format(secret=_scram_secret(_owner_password(settings)))
    _run(psql, timeout=60, stdin=script + _DB_SQL)
    conninfos = {role: settings.postgres_conninfo()}
    if owner != role:
        conninfos[owner] = settings.migration_conninfo()
    for who, conninfo in conninfos.items():
        try:
            with psycopg.connect(conninfo, connect_timeout=5) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as e:  # libpq messages never include the password
            raise LabError(f"postgres: cannot connect as {who} to database {db} at {pg.host}:{pg.port}: {e}") from e
    if owner != role:
        say(f"postgres: role {role} (runtime), role {owner} (owns database {db}) ready")
    else:
        say(f"postgres: role {role} and database {db} ready")


def _owner_password(settings: Settings) -> str:
    """The migration role's password as `db upgrade` will find it (settings, file), else the lab's generated one."""
    pg = settings.postgres
    if pg.migration_password is not None:
        return pg.migration_password.get_secret_value()
    if pg.migration_password_file is not None:
        return pg.migration_password_file.read_text().splitlines()[0].strip()
    return lab_password(settings.lab, pg.migration_user)


def throwaway_name(port: int) -> str:
    """The name of a cluster the project creates beside the distribution's `main` (tests, CI)."""
    return f"port{port}"


def drop_throwaway_cluster(port: int, progress: Progress | None = None) -> None:
    """Stop and drop the cluster named `port<port>` on that port, which only the project creates; never `main`."""
    say = progress or _quiet
    ours = [c for c in _clusters(port) if c.name == throwaway_name(port)] if shutil.which("pg_lsclusters") else []
    if not ours:
        say(f"postgres: no throwaway cluster {throwaway_name(port)} on port {port}")
    for c in ours:
        _run(["pg_dropcluster", "--stop", c.version, c.name], timeout=120)
        say(f"postgres: cluster {c.version}/{c.name} dropped")


def _online(port: int) -> list[PgCluster]:
    return [c for c in _clusters(port) if c.online] if shutil.which("pg_lsclusters") else []


def online_clusters(port: int) -> list[str]:
    """The online clusters on port, as version/name."""
    return [f"{c.version}/{c.name}" for c in _online(port)]


def stop_postgres(progress: Progress | None = None, *, port: int) -> None:
    """Stop the cluster listening on port when it is online; no-op otherwise."""
    say = progress or _quiet
    online = _online(port)
    if not online:
        say(f"postgres: no online cluster on port {port}")
    for c in online:
        _run(["pg_ctlcluster", c.version, c.name, "stop"], timeout=120)
        say(f"postgres: cluster {c.version}/{c.name} stopped")
