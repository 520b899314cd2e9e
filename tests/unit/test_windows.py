from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcontrol.domain.windows import (
    Window,
    local_day_bounds,
    local_week_start,
    parse_window,
    parse_windows,
    parse_wing_windows,
    seconds_left_in_window,
    windows_for_wing,
)

LONDON = ZoneInfo("Europe/London")
SPRING = (2026, 3, 29)  # clocks go forward at 01:00 GMT to 02:00 BST
AUTUMN = (2026, 10, 25)  # clocks go back at 02:00 BST to 01:00 GMT


def local(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=LONDON, fold=fold)


# -- parsing ---------------------------------------------------------------------------


def test_parse_windows_sorted() -> None:
    assert parse_windows(["13:30-19:45", "08:00-12:00", " 7:05 - 7:55 "]) == (
        Window(time(7, 5), time(7, 55)),
        Window(time(8), time(12)),
        Window(time(13, 30), time(19, 45)),
    )
    assert parse_windows([]) == ()
    assert str(parse_window("08:00-12:00")) == "08:00-12:00"


def test_touching_windows_are_fine() -> None:
    assert len(parse_windows(["08:00-12:00", "12:00-13:00"])) == 2


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["8-12"], "not of the form HH:MM-HH:MM"),
        (["08:00"], "not of the form"),
        (["08:00-12:00,13:00-14:00"], "not of the form"),
        (["08:00-24:00"], "not a time of day"),
        (["08:60-12:00"], "not a time of day"),
        (["12:00-08:00"], "cannot cross midnight"),
        (["22:00-02:00"], "cannot cross midnight"),
        (["08:00-08:00"], "end must be after the start"),
        (["08:00-12:00", "11:59-13:00"], "overlap"),
        (["08:00-12:00", "08:00-12:00"], "overlap"),
        (["08:00-18:00", "09:00-10:00"], "overlap"),
    ],
)
def test_bad_windows(specs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_windows(specs)


def test_window_itself_refuses_end_before_start() -> None:
    with pytest.raises(ValueError):
        Window(time(12), time(8))


def test_wing_windows() -> None:
    site = parse_windows(["08:00-20:00"])
    wings = parse_wing_windows([("A", ["09:00-10:00"]), ("B", [])])
    assert windows_for_wing(site, wings, "A") == (Window(time(9), time(10)),)
    assert windows_for_wing(site, wings, "B") == ()  # its own, empty: any time
    assert windows_for_wing(site, wings, "C") == site
    with pytest.raises(ValueError, match="wing A"):
        parse_wing_windows([("A", ["10:00-09:00"])])


# -- seconds left ----------------------------------------------------------------------


def test_no_windows_no_restriction() -> None:
    assert seconds_left_in_window((), local(2026, 5, 1, 3)) is None


def test_inside_and_outside() -> None:
    windows = parse_windows(["08:00-12:00", "13:30-19:45"])
    assert seconds_left_in_window(windows, local(2026, 5, 1, 8)) == 4 * 3600  # start included
    assert seconds_left_in_window(windows, local(2026, 5, 1, 11, 59, 30)) == 30
    assert seconds_left_in_window(windows, local(2026, 5, 1, 12)) == 0  # end excluded
    assert seconds_left_in_window(windows, local(2026, 5, 1, 7, 59, 59)) == 0
    assert seconds_left_in_window(windows, local(2026, 5, 1, 13)) == 0
    assert seconds_left_in_window(windows, local(2026, 5, 1, 19, 45)) == 0
    assert seconds_left_in_window(windows, local(2026, 5, 1, 19)) == 45 * 60


def test_partial_seconds_round_down() -> None:
    windows = parse_windows(["08:00-12:00"])
    now = local(2026, 5, 1, 11, 59, 58) + timedelta(microseconds=500_000)
    assert seconds_left_in_window(windows, now) == 1
    assert seconds_left_in_window(windows, now + timedelta(seconds=1)) == 0


def test_touching_windows_count_through() -> None:
    windows = parse_windows(["08:00-12:00", "12:00-13:00", "13:00-13:30", "14:00-15:00"])
    assert seconds_left_in_window(windows, local(2026, 5, 1, 11)) == int(2.5 * 3600)
    assert seconds_left_in_window(windows, local(2026, 5, 1, 12, 30)) == 3600


def test_now_is_read_on_the_local_clock() -> None:
    # The caller converts to the prison's time zone; the wall clock there decides.
    windows = parse_windows(["08:00-12:00"])
    now = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # 11:00 BST
    assert seconds_left_in_window(windows, now.astimezone(LONDON)) == 3600
    assert seconds_left_in_window(windows, now) == 7200  # read as 10:00 on a UTC clock


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        seconds_left_in_window(parse_windows(["08:00-12:00"]), datetime(2026, 5, 1, 9))


def test_window_across_spring_forward_is_an_hour_shorter() -> None:
    windows = parse_windows(["00:00-03:00"])
    # 00:30 GMT to 03:00 BST is 1 h 30 min of real time.
    assert seconds_left_in_window(windows, local(*SPRING, 0, 30)) == 90 * 60


def test_window_ending_in_the_skipped_hour_ends_at_the_jump() -> None:
    windows = parse_windows(["00:00-01:30"])
    # At 01:00 GMT the clocks jump to 02:00 BST, past 01:30: the window ends then.
    assert seconds_left_in_window(windows, local(*SPRING, 0, 45)) == 15 * 60


def test_window_across_fall_back_is_an_hour_longer() -> None:
    windows = parse_windows(["00:00-03:00"])
    # 00:30 BST to 03:00 GMT is 3 h 30 min of real time.
    assert seconds_left_in_window(windows, local(*AUTUMN, 0, 30)) == 210 * 60
    # 01:30 the second time (GMT) to 03:00 GMT.
    assert seconds_left_in_window(windows, local(*AUTUMN, 1, 30, fold=1)) == 90 * 60


def test_window_ending_in_the_repeated_hour() -> None:
    windows = parse_windows(["00:00-01:30"])
    # The first 01:30 (BST) ends it for a call at 01:15 BST ...
    assert seconds_left_in_window(windows, local(*AUTUMN, 1, 15)) == 15 * 60
    # ... and the second 01:30 (GMT) for a call at 01:15 GMT.
    assert seconds_left_in_window(windows, local(*AUTUMN, 1, 15, fold=1)) == 15 * 60


def test_daytime_windows_on_change_days() -> None:
    windows = parse_windows(["08:00-12:00"])
    assert seconds_left_in_window(windows, local(*SPRING, 9)) == 3 * 3600
    assert seconds_left_in_window(windows, local(*AUTUMN, 9)) == 3 * 3600


# -- days and weeks --------------------------------------------------------------------


def test_ordinary_day() -> None:
    start, end = local_day_bounds(datetime(2026, 5, 1, 12, tzinfo=UTC), LONDON)
    assert start == datetime(2026, 4, 30, 23, tzinfo=UTC)  # 00:00 BST
    assert end == datetime(2026, 5, 1, 23, tzinfo=UTC)
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_spring_forward_day_is_23_hours() -> None:
    start, end = local_day_bounds(local(*SPRING, 12), LONDON)
    assert start == datetime(2026, 3, 29, 0, tzinfo=UTC)  # 00:00 GMT
    assert end == datetime(2026, 3, 29, 23, tzinfo=UTC)  # 00:00 BST on the 30th
    assert end - start == timedelta(hours=23)


def test_fall_back_day_is_25_hours() -> None:
    start, end = local_day_bounds(local(*AUTUMN, 12), LONDON)
    assert start == datetime(2026, 10, 24, 23, tzinfo=UTC)  # 00:00 BST
    assert end == datetime(2026, 10, 26, 0, tzinfo=UTC)  # 00:00 GMT on the 26th
    assert end - start == timedelta(hours=25)


def test_day_of_an_instant_is_its_local_day() -> None:
    # 23:30 UTC on 1 May is 00:30 BST on 2 May.
    start, _ = local_day_bounds(datetime(2026, 5, 1, 23, 30, tzinfo=UTC), LONDON)
    assert start == datetime(2026, 5, 1, 23, tzinfo=UTC)


def test_day_starting_in_a_gap_starts_at_the_jump() -> None:
    santiago = ZoneInfo("America/Santiago")  # 2026-09-06: 00:00 -04 jumps to 01:00 -03
    start, end = local_day_bounds(datetime(2026, 9, 6, 12, tzinfo=santiago), santiago)
    assert start == datetime(2026, 9, 6, 4, tzinfo=UTC)
    assert end == datetime(2026, 9, 7, 3, tzinfo=UTC)


def test_week_start() -> None:
    # Sunday 29 March 2026 (the spring change): the week began Monday 23rd, 00:00 GMT.
    assert local_week_start(local(*SPRING, 12), LONDON) == datetime(2026, 3, 23, 0, tzinfo=UTC)
    # Monday 30 March 00:30 BST is 29 March 23:30 UTC: a new week.
    monday = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)
    assert local_week_start(monday, LONDON) == datetime(2026, 3, 29, 23, tzinfo=UTC)
    # Sunday 25 October 2026 (the autumn change): the week began Monday 19th, 00:00 BST.
    assert local_week_start(local(*AUTUMN, 12), LONDON) == datetime(2026, 10, 18, 23, tzinfo=UTC)
    # The Monday after the change starts at 00:00 GMT.
    after = local(2026, 10, 28, 12)
    assert local_week_start(after, LONDON) == datetime(2026, 10, 26, 0, tzinfo=UTC)


def test_naive_now_is_refused_for_days() -> None:
    with pytest.raises(ValueError):
        local_day_bounds(datetime(2026, 5, 1, 12), LONDON)
    with pytest.raises(ValueError):
        local_week_start(datetime(2026, 5, 1, 12), LONDON)
