"""`bin/test --self-check`: proves the test gate on temporary copies of this checkout.

Each case injects one fault the gate must catch (a lint error, a format error, a type error, a skipped contract
test, a process left running by a test) and runs the copy's `bin/test`: it must exit non-zero, name the
injected fault, never reach the cluster tier, and leave nothing running. A later change that quietly loosens
the gate makes this fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AREA = 'pytestmark = pytest.mark.area("lab")\n'  # every test carries an area (tests/conftest.py checks it)


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, str]  # path in the copy -> content
    expect: tuple[str, ...]  # all must appear in the output


LEAK = f'''"""Injected by the gate self-check: a test that leaves a monitoring process running."""

import subprocess
from pathlib import Path

import pytest

{AREA}

def test_leaves_prometheus_running(tmp_path: Path) -> None:
    mon = tmp_path / "monitoring"
    mon.mkdir()
    (mon / "prometheus.yml").write_text("global: {{}}\\n")
    argv = ["prometheus", f"--config.file={{mon / 'prometheus.yml'}}", "--web.listen-address=127.0.0.1:9499",
            f"--storage.tsdb.path={{mon / 'data'}}"]  # fmt: skip
    subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
'''

SKIP = f'''"""Injected by the gate self-check: a contract test that skips."""

import pytest

{AREA}

def test_skipped_by_the_self_check() -> None:
    pytest.skip("injected by the gate self-check")
'''

CASES = (
    Case("lint error", {"cassandra_recovery/selfcheck_lint.py": "import os\n"}, ("selfcheck_lint.py", "F401")),
    Case("format error", {"cassandra_recovery/selfcheck_format.py": "X = {  'a':1 }\n"}, ("selfcheck_format.py",)),
    Case(
        "type error",
        {"cassandra_recovery/selfcheck_types.py": 'def f() -> int:\n    return "x"\n'},
        ("selfcheck_types.py", "Incompatible return value type"),
    ),
    Case("skipped contract test", {"tests/contract/test_selfcheck_skip.py": SKIP}, ("skipped: tests/contract",)),
    Case("leftover process", {"tests/unit/test_selfcheck_leak.py": LEAK}, ("left behind after the unit tier",)),
)


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


def copy_checkout(dest: Path, files: list[str]) -> None:
    """The working tree as it is (committed or not), with this checkout's virtualenv."""
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    (dest / ".venv").symlink_to(ROOT / ".venv")


def leftovers() -> str:
    cr = str(ROOT / ".venv" / "bin" / "cassandra-recovery")
    return subprocess.run([cr, "lab", "leftovers", "--all"], capture_output=True, text=True).stdout


def run_case(case: Case, files: list[str], base: Path) -> list[str]:
    """The problems found with this case; empty when the gate caught the fault as it should."""
    copy = base / case.name.replace(" ", "-")
    copy_checkout(copy, files)
    for path, content in case.files.items():
        (copy / path).write_text(content)
    started = time.monotonic()
    proc = subprocess.run(["bin/test"], cwd=copy, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    (base / f"{copy.name}.log").write_text(out)
    problems = []
    if proc.returncode == 0:
        problems.append("bin/test exited 0")
    problems += [f"output does not name {e!r}" for e in case.expect if e not in out]
    if "== cluster" in out:
        problems.append("the cluster tier started")
    if left := leftovers():
        problems.append(f"left running afterwards:\n{left}")
    print(f"[self-check] {case.name}: exit {proc.returncode} after {time.monotonic() - started:.0f}s"
          f" -> {'caught' if not problems else 'NOT CAUGHT'}", flush=True)  # fmt: skip
    return problems


def main() -> int:
    if left := leftovers():
        print(f"[self-check] stop the project's processes first:\n{left}", file=sys.stderr)
        return 2
    files = tracked_files()
    failures = {}
    with tempfile.TemporaryDirectory(prefix="cr-gate-") as tmp:
        env_base = Path(tmp)
        os.environ["CASSANDRA_RECOVERY_LAB__BASE_DIR"] = str(env_base / "lab")  # never the real lab's directory
        for case in CASES:
            if problems := run_case(case, files, env_base):
                failures[case.name] = problems
                print((env_base / f"{case.name.replace(' ', '-')}.log").read_text()[-3000:], file=sys.stderr)
    for name, problems in failures.items():
        print(f"[self-check] {name}: " + "; ".join(problems), file=sys.stderr)
    print(f"[self-check] {len(CASES) - len(failures)} of {len(CASES)} injected faults caught")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
