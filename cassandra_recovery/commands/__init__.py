"""One module per CLI verb group; each exposes add_parser(sub) and run(args, settings) -> exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

Progress = Callable[[str], None]


def progress(prefix: str) -> Progress:
    """Progress lines on stderr, so --json output on stdout stays machine-readable."""

    def say(msg: str) -> None:
        print(f"[{prefix}] {msg}", file=sys.stderr, flush=True)

    return say
