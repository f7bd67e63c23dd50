"""tests/FAULTS.md from fault markers: rendering, parsing it back, and the proofs a new version would lose."""

from __future__ import annotations

import pytest

from tests.faults import AREAS, FAULTS, marker_problems, tier_of
from tests.faults_doc import HEADER, parse, proofs_of, removed, render

pytestmark = pytest.mark.area("lab")

VOCABULARY = {"node frozen": "SIGSTOP", "PostgreSQL down": "stopped", "never proven": "nothing injects it"}
MARKED = [
    ("tests/cluster/test_b.py::test_freeze", ["node frozen"]),
    ("tests/unit/test_a.py::test_model[1-x]", ["node frozen", "PostgreSQL down"]),
    ("tests/unit/test_a.py::test_model[2-y]", ["node frozen"]),
    ("tests/contract/test_c.py::test_stop", ["PostgreSQL down"]),
    ("tests/unit/test_a.py::test_plain", []),
]


def test_tier_is_the_directory_under_tests() -> None:
    assert [tier_of(n) for n, _ in MARKED] == ["cluster", "unit", "unit", "contract", "unit"]
    assert tier_of("elsewhere/test_x.py::test_y") == "other"
    assert tier_of("tests/test_top.py::test_y") == "other"


def test_a_parametrised_test_is_one_proof_and_unproven_faults_stay_listed() -> None:
    model, freeze, stop = (
        "tests/unit/test_a.py::test_model",
        "tests/cluster/test_b.py::test_freeze",
        "tests/contract/test_c.py::test_stop",
    )
    assert proofs_of(MARKED, VOCABULARY) == {
        "node frozen": {("cluster", freeze), ("unit", model)},
        "PostgreSQL down": {("unit", model), ("contract", stop)},
        "never proven": set(),
    }


def test_render_is_deterministic_in_vocabulary_then_tier_order() -> None:
    text = render(proofs_of(MARKED, VOCABULARY), VOCABULARY)
    assert text == render(proofs_of(list(reversed(MARKED)), VOCABULARY), VOCABULARY)
    lines = text.splitlines()
    assert lines[0] == HEADER and "scripts/faults.py" in HEADER
    assert "| node frozen | 1 | 0 | 1 |" in lines and "| never proven | 0 | 0 | 0 |" in lines
    section = lines[lines.index("## PostgreSQL down") :]
    assert section[2:6] == [
        "stopped",
        "",
        "- unit `tests/unit/test_a.py::test_model`",
        "- contract `tests/contract/test_c.py::test_stop`",
    ]
    assert lines[-1] == "- no test yet"


def test_parse_reads_back_what_render_wrote() -> None:
    proofs = proofs_of(MARKED, VOCABULARY)
    assert parse(render(proofs, VOCABULARY)) == proofs


def test_removed_names_lost_proofs_and_lost_faults_but_not_additions() -> None:
    old = proofs_of(MARKED, VOCABULARY)
    new = proofs_of(
        [
            ("tests/unit/test_a.py::test_model[1-x]", ["node frozen"]),
            ("tests/unit/test_new.py::test_n", ["node frozen"]),
        ],
        {"node frozen": "SIGSTOP", "PostgreSQL down": "stopped"},
    )
    assert removed(old, new) == [
        "PostgreSQL down: unit tests/unit/test_a.py::test_model",
        "PostgreSQL down: contract tests/contract/test_c.py::test_stop",
        "fault 'never proven' disappears",
        "node frozen: cluster tests/cluster/test_b.py::test_freeze",
    ]
    assert removed(new, old) == ["node frozen: unit tests/unit/test_new.py::test_n"]
    assert removed(old, old) == []


def test_a_test_moved_to_another_tier_is_a_lost_proof() -> None:
    old = proofs_of([("tests/cluster/test_b.py::test_freeze", ["node frozen"])], VOCABULARY)
    new = proofs_of([("tests/unit/test_b.py::test_freeze", ["node frozen"])], VOCABULARY)
    assert removed(old, new) == ["node frozen: cluster tests/cluster/test_b.py::test_freeze"]


def test_marker_problems() -> None:
    area, fault = next(iter(AREAS)), next(iter(FAULTS))
    assert marker_problems("t", [(area,)], [(fault,)]) == []
    assert marker_problems("t", [(area,)], []) == []
    assert "needs exactly one area" in marker_problems("t", [], [])[0]
    assert "needs exactly one area" in marker_problems("t", [(area,), (area,)], [])[0]
    assert "unknown area 'nowhere'" in marker_problems("t", [("nowhere",)], [])[0]
    assert marker_problems("t", [(area,)], [(fault, "node frozn")]) == [
        "t: unknown fault 'node frozn' (add it to tests/faults.py or use a listed one)"
    ]
    assert marker_problems("t", [(area,)], [()]) == ["t: fault marker without a fault name"]


def test_every_chaos_scenario_names_a_cluster_test_that_exists() -> None:
    from pathlib import Path

    from tests.faults import CHAOS_MATRIX

    cluster = Path(__file__).resolve().parents[1] / "cluster"
    defined = "".join(p.read_text() for p in cluster.glob("test_*.py"))
    missing = [test for _, test, _ in CHAOS_MATRIX if f"def {test}(" not in defined]
    assert CHAOS_MATRIX and missing == []
