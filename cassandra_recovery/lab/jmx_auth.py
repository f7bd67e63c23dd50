"""The lab's JMX credentials: one generated password per lab; every node's JMX asks for it (file-based)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cassandra_recovery.lab.layout import JMX_ACCESS_FILE, JMX_PASSWORD_FILE
from cassandra_recovery.settings import LabConfig

JMX_USER = "cassandra-recovery"
CLIENT_FILE = "jmx.password"  # in the lab directory, root's, 0600: nodetool's `-pwf`
NODE_PASSWORD_FILE = JMX_PASSWORD_FILE  # in each node's conf: the node user's, 0400
NODE_ACCESS_FILE = JMX_ACCESS_FILE  # the lab's, 0644


def client_file(lab: LabConfig) -> Path:
    return lab.base_dir / CLIENT_FILE


def password_line(password: str) -> str:
    """One line of a JMX password file, which is also the format of nodetool's `-pwf` file."""
    return f"{JMX_USER} {password}\n"


def access_file_text() -> str:
    return f"{JMX_USER} readwrite\n"


def lab_jmx_password(lab: LabConfig) -> str:
    """The lab's generated JMX password (file mode 0600), created on first call and reused afterwards."""
    path = client_file(lab)
    fields = path.read_text().split() if path.exists() else []
    if len(fields) == 2 and fields[0] == JMX_USER:
        return fields[1]
    if not lab.base_dir.is_dir():
        lab.base_dir.mkdir(parents=True)
        lab.base_dir.chmod(0o755)  # mkdir's mode is masked by the umask
    password = secrets.token_urlsafe(24)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "w") as f:
        f.write(password_line(password))
    try:  # link() never overwrites, so concurrent first calls agree on one password; replace() a broken file
        if path.exists():
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        return lab_jmx_password(lab)
    finally:
        tmp.unlink(missing_ok=True)
    return password
