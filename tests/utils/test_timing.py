"""Phase timing: recorded only inside a recording, never counted twice when phases nest."""

from __future__ import annotations

import time

from fedrouter.utils.timing import phase, recording, timed


@timed("inner")
def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def test_phases_add_up_and_nested_phases_count_once():
    # Prepare / Execute
    with recording() as totals:
        _sleep(0.02)
        _sleep(0.02)
        with phase("outer"):
            _sleep(0.05)  # inside 'outer': belongs to 'outer' only
    # Assert
    assert set(totals) == {"inner", "outer"}
    assert 0.04 <= totals["inner"] < 0.2
    assert 0.05 <= totals["outer"] < 0.2


def test_nothing_recorded_outside_a_recording():
    with recording() as totals:
        pass
    _sleep(0.001)
    assert dict(totals) == {}
