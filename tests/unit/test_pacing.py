"""The verification's rows/s ceiling: reads wait exactly as long as they ran ahead of it, shared by readers."""

from __future__ import annotations

import pytest

from cassandra_recovery.logic.pacing import RowPacer

pytestmark = pytest.mark.area("verification")


def test_reads_ahead_of_the_ceiling_wait_and_reads_behind_it_do_not() -> None:
    p = RowPacer(rows_per_s=1000)
    assert p.took(500, now=10.0) == pytest.approx(0.5)  # 500 rows may take 0.5 s: read at once, wait the rest
    assert p.took(500, now=11.0) == 0.0  # 1,000 rows in 1 s: on the ceiling
    assert p.took(2000, now=11.5) == pytest.approx(1.5)  # 3,000 rows allowed by 13.0


def test_several_readers_share_one_ceiling() -> None:
    p = RowPacer(rows_per_s=100)
    waits = [p.took(50, now=0.0) for _ in range(4)]
    assert waits == pytest.approx([0.5, 1.0, 1.5, 2.0])


def test_no_ceiling() -> None:
    assert RowPacer(rows_per_s=0).took(10**9, now=0.0) == 0.0
