"""A secret the lab generates once into a file of its own (the PostgreSQL roles' passwords, the JMX login)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_new_secret(base_dir: Path, path: Path, render: Callable[[str], str]) -> str | None:
    """A new random secret written to `path` as `render(secret)`, mode 0600 from birth and never through a symlink;
    None when a concurrent first call's file got there first (the caller reads that one instead)."""
    if not base_dir.is_dir():
        base_dir.mkdir(parents=True)
        base_dir.chmod(0o755)  # mkdir's mode is masked by the umask
    secret = secrets.token_urlsafe(24)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "w") as f:
        f.write(render(secret))
    try:  # link() never overwrites, so concurrent first calls agree on one secret; replace() a broken or empty file
        if path.exists():
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    except FileExistsError:
        return None
    finally:
        tmp.unlink(missing_ok=True)
    return secret
