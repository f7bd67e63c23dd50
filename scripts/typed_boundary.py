"""No `Any` at the Prefect boundary: every parameter and return of a function decorated with `flow` or `task`
(`@flow`, `@flow(...)`, `@prefect.task(...)`) in flows/ and tasks/ is annotated, and no annotation mentions `Any`.
The shapes that cross it are in cassandra_recovery/contracts.py.

    python scripts/typed_boundary.py --check [PATH ...]   # exit 1 listing file:line and the annotation
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "tasks")
DECORATORS = {"flow", "task"}


def _decorator_name(node: ast.expr) -> str | None:
    """`flow`, `flow(...)`, `prefect.flow(...)` -> "flow"."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _mentions_any(annotation: ast.expr) -> bool:
    """Whether the annotation names Any (as a name, typing.Any, or inside a string annotation)."""
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name) and node.id == "Any":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "Any":
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                if _mentions_any(ast.parse(node.value, mode="eval").body):
                    return True
            except SyntaxError:
                continue
    return False


def boundary(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The flows and tasks defined in one file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        fn
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_decorator_name(d) in DECORATORS for d in fn.decorator_list)
    ]


def problems(path: Path) -> list[str]:
    """file:line: what is wrong, for every flow or task in one file."""
    out: list[str] = []
    for fn in boundary(path):
        a = fn.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(p for p in (a.vararg, a.kwarg) if p is not None)]
        where = f"{path}:{fn.lineno}: {fn.name}"
        for p in params:
            if p.annotation is None:
                out.append(f"{where}: parameter {p.arg} is not annotated")
            elif _mentions_any(p.annotation):
                out.append(f"{where}: parameter {p.arg}: {ast.unparse(p.annotation)}")
        if fn.returns is None:
            out.append(f"{where}: the return is not annotated")
        elif _mentions_any(fn.returns):
            out.append(f"{where}: returns {ast.unparse(fn.returns)}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail (exit 1) on any finding")
    parser.add_argument("paths", nargs="*", type=Path, help="files or directories (default: flows/ and tasks/)")
    args = parser.parse_args(argv)
    roots = args.paths or [ROOT / p for p in PACKAGES]
    files = sorted(f for r in roots for f in ([r] if r.is_file() else r.rglob("*.py")))
    found = [p for f in files for p in problems(f)]
    for line in found:
        print(line)
    if found:
        print(f"typed boundary: {len(found)} finding(s) in {len(files)} file(s)", file=sys.stderr)
        return 1 if args.check else 0
    checked = sum(len(boundary(f)) for f in files)
    print(f"typed boundary: {checked} flows and tasks in {len(files)} files, no Any and nothing unannotated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
