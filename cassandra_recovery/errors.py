"""Error types that carry what happened: command, exit code, output, host."""

from __future__ import annotations

from collections.abc import Sequence


class RecoveryError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(RecoveryError):
    """Settings or user input that cannot be used (bad cluster id, node name, duration...)."""


class ToolMissingError(RecoveryError):
    """A program the project needs is not installed; the message says how to install it."""


def _excerpt(text: str, limit: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class CommandError(RecoveryError):
    """An external command failed or timed out; keeps argv, exit code, stdout and stderr."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stdout: str,
        stderr: str,
        host: str | None = None,
        reason: str = "failed",
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.host = host
        self.reason = reason
        where = f" on {host}" if host else ""
        code = "timed out" if returncode is None else f"exit code {returncode}"
        detail = _excerpt(stderr) or _excerpt(stdout)
        super().__init__(f"command {reason}{where} ({code}): {' '.join(self.argv)}\n{detail}")


class ParseError(RecoveryError):
    """Tool output in a layout the parser does not know; names the command and an excerpt."""

    def __init__(self, command: str, message: str, text: str) -> None:
        self.command = command
        self.text = text
        super().__init__(f"cannot parse `{command}` output: {message}\n--- excerpt ---\n{_excerpt(text, 600)}")


class LabError(RecoveryError):
    """The local lab cluster could not do what was asked; quotes node logs where relevant."""


class NodeUnreachableError(RecoveryError):
    """A node did not answer a probe or a pinned query in time."""
