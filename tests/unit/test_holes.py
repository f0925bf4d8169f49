"""The agent's skip detector: a delivered offset beyond the next expected one is a hole."""

from __future__ import annotations

from streamlearn.worker.rebalance import Holes


def test_consecutive_offsets_and_redeliveries_are_no_hole():
    holes = Holes()
    holes.reset({"p": 62})
    assert [holes.seen("p", offset) for offset in (62, 63, 64, 63, 64, 65)] == [None] * 6


def test_an_offset_past_the_resume_offset_reports_the_records_skipped():
    holes = Holes()
    holes.reset({"p": 62, "q": 0})
    assert holes.seen("p", 63) == (62, 62)  # the skip traced in issue 6
    assert holes.seen("q", 156) == (0, 155)  # resumed at its log start: the fourth gap's skip


def test_a_partition_unknown_at_the_reset_starts_at_its_first_delivery():
    holes = Holes()
    holes.reset({})
    assert holes.seen("q", 500) is None
    assert holes.seen("q", 503) == (501, 502)


def test_a_rebalance_starts_over_from_the_new_positions():
    holes = Holes()
    holes.reset({"p": 10})
    holes.seen("p", 10)
    holes.reset({"p": 4})  # the partition came back with an older commit: re-reading is normal
    assert holes.seen("p", 4) is None
