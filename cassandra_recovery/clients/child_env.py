"""The environment of a child process: an allow-list of this process's, so secrets are not inherited by accident."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

from cassandra_recovery.settings import ENV_PREFIX

# What any tool needs to run and to print messages that parse the same everywhere.
BASE = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "JAVA_HOME")
BASE_PREFIXES = ("LC_",)
# Downloads (apt-get, Maven) go through the host's proxy, if it has one.
PROXY = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
# Names that carry credentials are never inherited, even when asked for: a child that needs one gets it in `extra`.
_SECRET = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|AUTH_STRING|API_KEY|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)


def child_env(
    names: Iterable[str] = (),
    prefixes: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """BASE and `names` (exact) and variables starting with BASE_PREFIXES or `prefixes`, taken from `environ`
    (default this process's) unless their name looks like a secret; then `extra`, set as given."""
    env = os.environ if environ is None else environ
    wanted = {*BASE, *names}
    starts = (*BASE_PREFIXES, *prefixes)
    out = {k: v for k, v in env.items() if (k in wanted or k.startswith(starts)) and not _SECRET.search(k)}
    return {**out, **(extra or {})}


def own_config(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This tool's settings variables (secrets included): for children that are this tool itself and read its
    settings from the environment, passed as `extra`."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
