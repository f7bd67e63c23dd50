"""Write tests/FAULTS.md from the tests' fault markers, or check the committed one (--check).

Collects the suite in-process (`pytest --collect-only`): no test runs, no lab, PostgreSQL or root needed.

    .venv/bin/python scripts/faults.py                   # regenerate tests/FAULTS.md
    .venv/bin/python scripts/faults.py --check           # exit 1: stale file; exit 2: a proof would disappear
    .venv/bin/python scripts/faults.py --check --base origin/main   # also: nothing lost since that revision
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tests and package, not whatever the venv has installed

import pytest  # noqa: E402

from tests.faults import CHAOS_MATRIX, FAULTS, TIERS, tier_of  # noqa: E402
from tests.faults_doc import Proofs, parse, proofs_of, removed, render  # noqa: E402

DOC = ROOT / "tests" / "FAULTS.md"
STALE, LOST, BROKEN = 1, 2, 3


class _Collector:
    def __init__(self) -> None:
        self.marked: list[tuple[str, list[str]]] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            self.marked.append((item.nodeid, [str(n) for m in item.iter_markers("fault") for n in m.args]))


def collect() -> list[tuple[str, list[str]]]:
    """(node id, fault names) of every test, or exit BROKEN with pytest's output."""
    collector = _Collector()
    out = io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(out):
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "tests"], plugins=[collector])
    if code != 0:
        sys.stderr.write(out.getvalue()[-5000:] + f"\nscripts/faults.py: collection failed (pytest exit {code})\n")
        raise SystemExit(BROKEN)
    outside = sorted({n for n, _ in collector.marked if tier_of(n) not in TIERS})
    if outside:
        sys.stderr.write("tests outside the tiers bin/test runs (" + ", ".join(TIERS) + "):\n  " + "\n  ".join(outside))
        raise SystemExit(BROKEN)
    return collector.marked


def _at(revision: str) -> str | None:
    got = subprocess.run(
        ["git", "show", f"{revision}:tests/FAULTS.md"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return got.stdout if got.returncode == 0 else None


def _report_lost(against: str, old: Proofs, new: Proofs) -> bool:
    lost = removed(old, new)
    if lost:
        print(f"REMOVED against {against} (proofs the markers no longer give):")
        print("\n".join(f"  - {x}" for x in lost))
    return bool(lost)


def check(text: str, base: str | None) -> int:
    new = parse(text)
    committed = DOC.read_text() if DOC.exists() else ""
    lost = _report_lost("the committed tests/FAULTS.md", parse(committed), new)
    if base is not None:
        old = _at(base)
        if old is None:
            print(f"note: no tests/FAULTS.md at {base}; nothing to compare with")
        else:
            lost = _report_lost(f"tests/FAULTS.md at {base}", parse(old), new) or lost
    if committed != text:
        diff = difflib.unified_diff(
            committed.splitlines(), text.splitlines(), "tests/FAULTS.md (committed)", "from the markers", lineterm=""
        )
        print("\n".join(diff))
        print("tests/FAULTS.md is stale: run .venv/bin/python scripts/faults.py and commit it")
    if lost:
        return LOST
    return STALE if committed != text else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    ap.add_argument("--base", metavar="REV", help="with --check: also refuse proofs lost since this git revision")
    args = ap.parse_args(argv)
    text = render(proofs_of(collect(), FAULTS), FAULTS, CHAOS_MATRIX)
    if args.check:
        return check(text, args.base)
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
