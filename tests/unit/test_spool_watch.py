"""Which settled calls' recordings are ready (services/recording_jobs.py SpoolWatch): a file
that holds audio and has stopped growing, after a grace; no file for long, to be recorded
missing; nothing at all for a call never accepted or a privileged one. Times are given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcontrol.services.recording_jobs import SettledCall, SpoolWatch

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
SPOOL = Path("/spool")


def call(n: int, privileged: bool = False, accepted: bool = True) -> SettledCall:
    return SettledCall(n, f"u{n}", privileged, accepted, T0 + timedelta(seconds=n))


class Files:
    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}

    def __call__(self, path: Path) -> int:
        return self.sizes.get(path.name, 0)


def watch() -> tuple[SpoolWatch, Files]:
    files = Files()
    return SpoolWatch(SPOOL, files, grace_s=1.5, steady_s=0.5, wait_s=20), files


def test_a_file_is_ready_once_it_stopped_growing_after_the_grace() -> None:
    w, files = watch()
    files.sizes["u1.raw"] = 100
    w.add([call(1)], now=0)
    assert w.ready(1.0) == []  # in the grace
    files.sizes["u1.raw"] = 200  # MixMonitor still writing
    assert w.ready(1.6) == []
    assert w.ready(2.0) == []  # steady for 0.4 s only
    assert [c.call_id for c in w.ready(2.1)] == [1]
    assert w.backlog() == 1  # until it is dropped, dealt with
    w.drop(1)
    assert w.backlog() == 0 and len(w) == 0


def test_no_file_is_waited_for_then_recorded_missing_unless_nothing_was_recorded() -> None:
    w, files = watch()
    w.add([call(1), call(2, privileged=True), call(3, accepted=False)], now=0)
    assert w.ready(2) == []
    assert 2 not in w and 3 not in w  # nothing recorded, nothing missing: dropped
    assert w.backlog() == 0  # a call with no audio is not waiting for compression
    assert w.ready(19.9) == []
    assert [c.call_id for c in w.ready(20)] == [1]  # to be recorded missing


def test_a_privileged_or_unaccepted_call_with_audio_is_dealt_with() -> None:
    """Its audio must go (a privileged call's is deleted, never stored)."""
    w, files = watch()
    files.sizes["u2.raw"] = files.sizes["u3.raw"] = 64
    w.add([call(3, accepted=False), call(2, privileged=True)], now=0)
    assert [c.call_id for c in w.ready(2)] == [2, 3]  # the earliest settled first


def test_later_and_a_call_added_again() -> None:
    w, files = watch()
    files.sizes["u1.raw"] = 100
    w.add([call(1)], now=0)
    w.later(1, 60)
    assert w.ready(59) == []
    assert [c.call_id for c in w.ready(60)] == [1]
    w.drop(1)
    w.add([call(1)], now=61)  # brought back by a poll's overlap: dealt with already
    assert 1 not in w
    w.forget_before(T0 + timedelta(seconds=2))
    w.add([call(1)], now=62)  # forgotten: it would be claimed, and found done
    assert 1 in w
