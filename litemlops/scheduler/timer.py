"""The scheduler's timer: one thread that sleeps until the next fire time, by an injected clock.

Why not APScheduler's `BackgroundScheduler`, which the scheduler used as its
alarm clock before: it reads the wall clock itself (APScheduler 3 has no
injectable clock), so `run_pending` and the tests could not share its rules,
and its own coalescing, misfire and `max_instances` checks would decide what
`triggers.Plan`, the runner's `on_busy` policy and our `schedule_misfired`
event decide. Two engines disagreed at the edges; now there is one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from litemlops import events
from litemlops.logger import get_logger

log = get_logger("litemlops.scheduler")

# The longest sleep. Event.wait counts monotonic time, which stands still
# while the machine sleeps, and fire times are wall-clock times: waking at
# least this often notices a resumed machine or a changed clock.
MAX_SLEEP = 60.0


class Timer:
    """Calls `tick` again and again on its own thread, sleeping as long as it says.

    tick: does what is due and returns the seconds until something is due
    next, or None to stop the thread. `wakeup()` cuts a sleep short, for when
    what is due changed (a schedule added, a fire time taken, a clock jumped).
    """

    def __init__(self, tick: Callable[[], float | None], *, name: str):
        self.tick = tick
        self._alarm = threading.Event()
        # A daemon thread, as APScheduler's is: a process that never stops the
        # scheduler still exits.
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wakeup(self) -> None:
        self._alarm.set()

    def join(self) -> None:
        """Wait for the thread to end; `tick` must return None by now, or soon."""
        self._alarm.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _loop(self) -> None:
        while True:
            self._alarm.clear()  # before the tick, so a change made during it wakes us again
            try:
                sleep = self.tick()
            except Exception as exc:  # a broken clock or trigger must not stop later fires
                log.error(
                    events.PIPELINE_TRIGGER_FAILED,
                    trigger="schedule",
                    error=f"{type(exc).__name__}: {exc}",
                    exc_info=True,
                )
                sleep = MAX_SLEEP
            if sleep is None:
                return
            self._alarm.wait(min(sleep, MAX_SLEEP))
