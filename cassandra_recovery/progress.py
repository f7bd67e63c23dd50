"""Progress of long work (lab up, load, repair, verification), told the same way by every caller.

Progress is a callable taking a line: a flow passes its run logger's `info`, the CLI a reporter that prints to
stderr. Counted work goes through `counted`: a reporter that can draw a bar (the CLI's, on a terminal) gets the
count; any other callable gets the same line it always got."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def counted(progress: Progress, what: str, done: int, total: int, line: str | None = None) -> None:
    """Tell `progress` that `done` of `total` parts of `what` are done. `line`: the plain line for a caller without
    bars, if not `what: done/total`; "" when the caller already said it in its own words."""
    step = getattr(progress, "step", None)
    if callable(step):
        step(what, done, total)
    elif line != "":
        progress(line if line is not None else f"{what}: {done}/{total}")
