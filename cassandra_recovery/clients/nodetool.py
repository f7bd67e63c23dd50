"""nodetool runner: argv lists (never a shell), timeouts, LANG=C, errors that carry everything."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence

from cassandra_recovery.errors import CommandError
from cassandra_recovery.settings import ClusterConfig, NodeAccess

log = logging.getLogger(__name__)


class Nodetool:
    """Runs nodetool against one node of a registered cluster, addressed through its JMX endpoint."""

    def __init__(self, cluster: ClusterConfig):
        self.cluster = cluster

    def argv(self, node: NodeAccess, args: Sequence[str], password_file: str | None = None) -> list[str]:
        argv = [*self.cluster.nodetool_command, "-h", node.jmx_host, "-p", str(node.jmx_port)]
        if self.cluster.jmx_username:
            argv += ["-u", self.cluster.jmx_username]
            if password_file:
                argv += ["-pwf", password_file]  # never on argv: ps would show it
        return argv + list(args)

    def run(
        self, node: str | NodeAccess, *args: str, timeout_s: float | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `nodetool ARGS` on the node (name, address or NodeAccess); CommandError on failure."""
        target = node if isinstance(node, NodeAccess) else self.cluster.node(node)
        env = {**os.environ, "LANG": "C", "LC_ALL": "C"}
        timeout = timeout_s or self.cluster.nodetool_timeout_s
        with tempfile.TemporaryDirectory() as tmp:
            pwf = None
            if self.cluster.jmx_username and self.cluster.jmx_password:
                pwf = os.path.join(tmp, "jmx.password")
                fd = os.open(pwf, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(f"{self.cluster.jmx_username} {self.cluster.jmx_password.get_secret_value()}\n")
            argv = self.argv(target, args, pwf)
            shown = [*args]
            log.debug("nodetool %s on %s", " ".join(shown), target.name)
            try:
                proc = subprocess.run(
                    argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
                )
            except subprocess.TimeoutExpired as e:
                raise CommandError(
                    ["nodetool", *shown], None, _text(e.stdout), _text(e.stderr), host=target.name, reason="timed out"
                ) from e
        if check and proc.returncode != 0:
            raise CommandError(["nodetool", *shown], proc.returncode, proc.stdout, proc.stderr, host=target.name)
        return proc

    def output(self, node: str | NodeAccess, *args: str, timeout_s: float | None = None) -> str:
        return self.run(node, *args, timeout_s=timeout_s).stdout


def _text(b: bytes | str | None) -> str:
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode(errors="replace")
