"""Fire-time planning: which fire times are due, coalesced or too late, against brute force."""

from datetime import UTC, datetime, timedelta

import pytest
from depth import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from litemlops.scheduler.triggers import EventTrigger, Listener, Plan, Schedule, late_by

T0 = datetime(2026, 1, 5, 10, 1, tzinfo=UTC)
STEP = 30  # seconds: clock jumps and graces are multiples, so boundaries are hit exactly


def cron_schedules():
    minutes = st.sets(st.integers(0, 59), min_size=1, max_size=4)
    hours = st.one_of(st.none(), st.sets(st.integers(0, 23), min_size=1, max_size=6))
    return st.builds(
        lambda m, h: ("cron", sorted(m), None if h is None else sorted(h)), minutes, hours
    )


def interval_schedules():
    seconds = st.integers(1, 240).map(lambda n: n * STEP)
    start = st.one_of(st.none(), st.integers(-7200, 0).map(lambda s: T0 + timedelta(seconds=s)))
    return st.tuples(st.just("interval"), seconds, start)


def schedule_of(shape, coalesce, grace):
    if shape[0] == "cron":
        _, minutes, hours = shape
        hour_field = "*" if hours is None else ",".join(map(str, hours))
        line = f"{','.join(map(str, minutes))} {hour_field} * * *"
        return Schedule("s", "p", cron=line, coalesce=coalesce, misfire_grace_time=grace)
    _, seconds, start = shape
    return Schedule(
        "s", "p", interval=seconds, start=start, coalesce=coalesce, misfire_grace_time=grace
    )


def brute_force_fire_times(shape, until):
    """Every fire time from T0 (inclusive) to `until`, found without APScheduler."""
    if shape[0] == "cron":
        _, minutes, hours = shape
        minute = T0  # on a whole minute
        found = []
        while minute <= until:
            if minute.minute in minutes and (hours is None or minute.hour in hours):
                found.append(minute)
            minute += timedelta(minutes=1)
        return found
    _, seconds, start = shape
    fire = start if start is not None else T0 + timedelta(seconds=seconds)
    found = []
    while fire <= until:
        if fire >= T0:
            found.append(fire)
        fire += timedelta(seconds=seconds)
    return found


@settings(max_examples=examples(150), deadline=None)
@given(
    shape=st.one_of(cron_schedules(), interval_schedules()),
    coalesce=st.booleans(),
    grace=st.one_of(st.none(), st.integers(1, 120).map(lambda n: n * STEP)),
    jumps=st.lists(st.integers(0, 720).map(lambda n: n * STEP), min_size=1, max_size=8),
)
@example(shape=("cron", [10], None), coalesce=False, grace=STEP, jumps=[9 * 60 + STEP])
def test_fires_are_the_trigger_times_in_each_window_coalesced_and_none_beyond_the_grace(
    shape, coalesce, grace, jumps
):
    schedule = schedule_of(shape, coalesce, grace)
    plan = Plan.starting(schedule, T0)
    expected = brute_force_fire_times(shape, T0 + timedelta(seconds=sum(jumps)) + timedelta(days=1))
    now, taken = T0, 0
    for jump in jumps:
        now += timedelta(seconds=jump)
        due, folded = plan.take_due(now)

        window = [f for f in expected[taken:] if f <= now]
        taken += len(window)
        if coalesce:
            assert (due, folded) == (window[-1:], max(len(window) - 1, 0))
        else:
            assert (due, folded) == (window, 0)
        assert plan.next_fire == expected[taken]  # nothing skipped, nothing taken twice
        for fire in due:
            late = late_by(fire, now)
            assert schedule.too_late(late) == (grace is not None and late > grace)


def test_a_fire_time_exactly_at_the_grace_still_runs_and_one_second_more_does_not():
    schedule = Schedule("s", "p", cron="10 * * * *", misfire_grace_time=60)
    fire = datetime(2026, 1, 5, 10, 10, tzinfo=UTC)

    assert not schedule.too_late(late_by(fire, fire + timedelta(seconds=60)))
    assert schedule.too_late(late_by(fire, fire + timedelta(seconds=61)))
    assert not Schedule("s", "p", interval=60, misfire_grace_time=None).too_late(10**9)


def test_a_cron_line_keeps_its_local_hour_across_daylight_saving_changes():
    schedule = Schedule("s", "p", cron="0 3 * * *", timezone="Europe/Paris")
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)  # Paris moves to summer time on the 29th
    plan = Plan.starting(schedule, start)

    fires = []
    for day in range(1, 5):
        (fire,), _ = plan.take_due(start + timedelta(days=day))
        fires.append(fire.astimezone(UTC).strftime("%m-%d %H:%M"))
    assert fires == ["03-28 02:00", "03-29 01:00", "03-30 01:00", "03-31 01:00"]


@pytest.mark.parametrize("cooldown, gaps, starts", [(0, [0, 0], 3), (60, [30, 30, 1], 2)])
def test_an_event_trigger_admits_events_a_cooldown_apart(cooldown, gaps, starts):
    listener = Listener(EventTrigger("alert:drift", "p", cooldown=cooldown))
    now = T0
    admitted = [listener.admit(now)[0]]
    for gap in gaps:
        now += timedelta(seconds=gap)
        admitted.append(listener.admit(now)[0])

    assert sum(admitted) == starts
