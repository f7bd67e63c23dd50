"""The lab's JMX credentials: one generated password per lab; every node's JMX asks for it (file-based)."""

from __future__ import annotations

from pathlib import Path

from cassandra_recovery.lab.layout import JMX_ACCESS_FILE, JMX_PASSWORD_FILE
from cassandra_recovery.lab.secret_file import write_new_secret
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
    password = write_new_secret(lab.base_dir, path, password_line)
    return lab_jmx_password(lab) if password is None else password
