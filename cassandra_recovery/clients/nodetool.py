"""nodetool runner: argv lists (never a shell), timeouts, LANG=C, errors that carry everything."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

from cassandra_recovery.clients.child_env import child_env
from cassandra_recovery.errors import CommandError
from cassandra_recovery.settings import ClusterConfig, NodeAccess

log = logging.getLogger(__name__)
# Beyond the allow-list: Cassandra's own scripts' variables, and what a nodetool_command through ssh or kubectl uses.
NODETOOL_ENV = ("CASSANDRA_HOME", "CASSANDRA_CONF", "CASSANDRA_INCLUDE", "SSH_AUTH_SOCK", "KUBECONFIG")


class Nodetool:
    """Runs nodetool against one node of a registered cluster, addressed through its JMX endpoint."""

    def __init__(self, cluster: ClusterConfig):
        self.cluster = cluster

    def credentials(self, node: NodeAccess) -> tuple[str | None, str | None]:
        """(JMX username, password file) for the node: its own when it names a user, else the cluster's."""
        if node.jmx_username:
            return node.jmx_username, node.jmx_password_file
        return self.cluster.jmx_username, self.cluster.jmx_password_file

    def argv(self, node: NodeAccess, args: Sequence[str], password_file: str | None = None) -> list[str]:
        """nodetool's argv; `password_file` (a temporary one for a password given in settings) stands in for a
        configured file. The password itself never goes on argv (`-pw`): ps would show it to every user."""
        user, configured = self.credentials(node)
        argv = [*self.cluster.nodetool_command, "-h", node.jmx_host, "-p", str(node.jmx_port)]
        if user:
            argv += ["-u", user]
            if pwf := configured or password_file:
                argv += ["-pwf", pwf]  # global options, before the command: `sjk` reads through the same connection
        return argv + list(args)

    def run(
        self,
        node: str | NodeAccess,
        *args: str,
        timeout_s: float | None = None,
        check: bool = True,
        interrupt: Callable[[], bool] | None = None,
        check_every_s: float = 5.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run `nodetool ARGS` on the node (name, address or NodeAccess); CommandError on failure. `interrupt`,
        asked every `check_every_s` while nodetool runs: True kills it (CommandInterrupted); what it started
        inside Cassandra goes on, and stopping that is the caller's."""
        target = node if isinstance(node, NodeAccess) else self.cluster.node(node)
        env = child_env(NODETOOL_ENV, extra={"LANG": "C", "LC_ALL": "C"})  # the JMX password goes in a 0600 file
        timeout = timeout_s or self.cluster.nodetool_timeout_s
        with tempfile.TemporaryDirectory() as tmp:
            pwf = None
            user, configured = self.credentials(target)
            if user and not configured and not target.jmx_username and self.cluster.jmx_password:
                pwf = os.path.join(tmp, "jmx.password")
                fd = os.open(pwf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(f"{self.cluster.jmx_username} {self.cluster.jmx_password.get_secret_value()}\n")
            argv = self.argv(target, args, pwf)
            shown = [*args]
            log.debug("nodetool %s on %s", " ".join(shown), target.name)
            proc = _run(["nodetool", *shown], argv, env, timeout, target.name, interrupt, check_every_s)
        if check and proc.returncode != 0:
            raise CommandError(["nodetool", *shown], proc.returncode, proc.stdout, proc.stderr, host=target.name)
        return proc

    def output(self, node: str | NodeAccess, *args: str, timeout_s: float | None = None) -> str:
        return self.run(node, *args, timeout_s=timeout_s).stdout


class CommandInterrupted(CommandError):
    """The caller's `interrupt` said stop: nodetool was killed before it finished."""


def _run(
    shown: list[str],
    argv: list[str],
    env: dict[str, str],
    timeout: float,
    host: str,
    interrupt: Callable[[], bool] | None,
    every_s: float,
) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + timeout
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
    ) as p:
        while True:
            left = deadline - time.monotonic()
            try:  # communicate() may be called again after a timeout without losing output
                out, err = p.communicate(timeout=max(0.01, min(left, every_s) if interrupt else left))
                return subprocess.CompletedProcess(argv, p.returncode, out, err)
            except subprocess.TimeoutExpired:
                pass
            stop = interrupt is not None and interrupt()
            if stop or time.monotonic() >= deadline:
                p.kill()
                out, err = p.communicate()
                why = "interrupted" if stop else "timed out"
                raise (CommandInterrupted if stop else CommandError)(shown, None, out, err, host=host, reason=why)
