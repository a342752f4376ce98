"""Work in worker processes: each pipeline task attempt (and each job the server hands
off) runs in a process of its own, started for it and gone after it (`Workers.call`);
work that lives as long as something of the caller's, such as a shadow challenger
scoring what a pipe brings, is started with `Workers.start` and waited for apart.

So training or a monitoring check never shares the server's interpreter, GIL or
memory, and a task past its timeout is really stopped: its process is killed.
Processes fork from a server process (multiprocessing's "forkserver") that has
imported the heavy libraries once, not from the serving process with its
threads and open files, so a start costs milliseconds, not seconds of imports.

What crosses over: the function and its arguments (pickled by reference: a
module-level function), the worker's events (rendered lines, written by this
process's log writer in order with its own), and the result or the error with
its traceback (as a note on the exception raised here). A worker whose parent
dies exits too, so a `kill -9` of `run` leaves no orphan holding the stores.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from litemlops.errors import LitemlopsError

#: Imported once by the fork server, so each worker starts with them loaded (with the
#: modules the home's applications name: `Workers(preload=...)`).
PRELOAD = (
    "litemlops.platform",
    "litemlops.monitoring.pipeline",
    "litemlops.store.features.feature_store",
    "pandas",
    "pyarrow.parquet",
    "duckdb",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.metrics",
)


#: Workers run at a lower CPU priority than their owner: on a machine with few cores a
#: training run then takes the cores the server leaves, instead of half of them.
NICENESS = 10


def start_fork_server(preload: Iterable[str] = ()) -> None:
    """Start the fork server now, not at the first worker: its imports (seconds of
    CPU) then overlap whatever this process does first. `run` calls it before
    importing what it serves with. A fork server already running is left as is."""
    _preloading(preload)
    _fork_server_running()


def _fork_server_running() -> None:
    """Start the fork server unless it runs, deaf to Ctrl-C: a terminal's Ctrl-C reaches
    the whole process group, and during its imports (before it ignores SIGINT itself)
    the server would print a traceback of its own. It inherits the ignored SIGINT
    across exec; its workers restore Python's handler (`_worker_main`)."""
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()  # handlers are the main thread's to change
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _preloading(preload: Iterable[str]) -> Any:
    # The fork server is one per process: what it preloads is set before it starts.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(dict.fromkeys([*PRELOAD, *preload])))
    return context


class WorkerTimeoutError(TimeoutError):
    """A worker ran longer than its timeout and was killed."""


class WorkerDiedError(LitemlopsError, RuntimeError):
    """A worker process ended without an answer (killed, crashed, out of memory)."""


class WorkerError(LitemlopsError, RuntimeError):
    """A worker's exception that could not be carried back as itself."""


class Workers:
    """Starts worker processes and waits for their answers; `stop()` kills the live ones.

    log_level: the level worker events are rendered at (the home's `logging.level`).
    preload: modules to import once besides `PRELOAD` (the applications' pipelines).
    """

    def __init__(self, log_level: str = "info", preload: Iterable[str] = ()):
        self.log_level = log_level
        self._context = _preloading(preload)
        self._live: set[Any] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def call(
        self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, name: str = ""
    ) -> Any:
        """`fn(*args)` in a new worker process; its result, or its exception raised here.

        timeout: seconds before the worker is killed and `WorkerTimeoutError` raised.
        """
        return self.start(fn, *args, name=name).result(timeout)

    def start(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str = "",
        niceness: int = NICENESS,
    ) -> Worker:
        """`fn(*args)` starting in a new worker process; `Worker.result` waits for it.

        For work that lives as long as something of the caller's (a shadow challenger
        reading jobs from a pipe passed in `args`). niceness: added to the worker's CPU
        priority.
        """
        with self._lock:
            if self._stopped:
                raise WorkerDiedError("workers are stopped: the process is shutting down")
        answers, answer_end = self._context.Pipe(duplex=False)
        alive_end, alive = self._context.Pipe(duplex=False)
        context = dict(structlog.contextvars.get_contextvars())
        process = self._context.Process(
            target=_worker_main,
            args=(fn, args, answer_end, alive_end, self.log_level, context, niceness),
            name=f"litemlops-worker{'-' + name if name else ''}",
        )
        _fork_server_running()
        process.start()
        with self._lock:
            self._live.add(process)
        answer_end.close()
        alive_end.close()
        return Worker(self, process, answers, alive, name)

    def stop(self) -> None:
        """Kill every live worker (the process is stopping); later calls are refused."""
        with self._lock:
            self._stopped = True
            live = list(self._live)
        for process in live:
            with contextlib.suppress(Exception):
                process.kill()

    @property
    def live(self) -> int:
        with self._lock:
            return len(self._live)

    def _forget(self, process: Any) -> None:
        with self._lock:
            self._live.discard(process)


class Worker:
    """One worker process started by `Workers.start`: `result` forwards its events and
    gives its answer; `kill` stops it."""

    def __init__(self, owner: Workers, process: Any, answers: Any, alive: Any, name: str):
        self._owner, self.process, self.name = owner, process, name
        self._answers, self._alive = answers, alive

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the worker's answer, writing its events as they come; its result,
        or its exception raised here. The worker is gone when this returns.

        timeout: seconds before the worker is killed and `WorkerTimeoutError` raised.
        """
        from litemlops.logsetup import forward_line

        process, answers, name = self.process, self._answers, self.name
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                if not answers.poll(min(wait, 1.0)):
                    if deadline is not None and time.monotonic() >= deadline:
                        process.kill()
                        raise WorkerTimeoutError(
                            f"{name or 'worker'} ran longer than its timeout of {timeout} s "
                            "and was stopped"
                        )
                    continue
                try:
                    kind, *message = answers.recv()
                except EOFError:
                    process.join(5)
                    raise WorkerDiedError(
                        f"{name or 'worker'} process {process.pid} ended without an answer "
                        f"(exit code {process.exitcode}; killed, crashed or out of memory)"
                    ) from None
                if kind == "log":
                    forward_line(*message)
                elif kind == "result":
                    return message[0]
                else:
                    raise _rebuilt(*message)
        finally:
            if process.is_alive():
                process.kill()
            process.join(5)
            self._owner._forget(process)
            answers.close()
            self._alive.close()


def _rebuilt(blob: bytes | None, kind: str, text: str, remote: str) -> BaseException:
    """The worker's exception as itself when it unpickles, with its traceback as a note."""
    exc: BaseException | None = None
    if blob is not None:
        with contextlib.suppress(Exception):
            exc = pickle.loads(blob)
    if not isinstance(exc, BaseException):
        exc = WorkerError(f"{kind}: {text}")
    exc.add_note(f"raised in a worker process:\n{remote.rstrip()}")
    return exc


def _worker_main(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    answers: Any,
    alive: Any,
    log_level: str,
    context: Mapping[str, Any],
    niceness: int = NICENESS,
) -> None:
    from litemlops.logsetup import configure_forwarding, shutdown_logging

    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            answers.send(message)

    def orphaned() -> None:
        with contextlib.suppress(BaseException):
            alive.recv_bytes()  # blocks until the parent closes it or dies
        os._exit(70)

    threading.Thread(target=orphaned, name="litemlops-parent-watch", daemon=True).start()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the fork server ignores it
    faulthandler.enable()  # a native fault shows its stacks on the owner's stderr
    with contextlib.suppress(OSError):
        os.nice(niceness)
    configure_forwarding(log_level, lambda level, line: send(("log", level, line)))
    structlog.contextvars.bind_contextvars(**context)
    try:
        value = fn(*args)
    except BaseException as exc:
        remote = "".join(traceback.format_exception(exc))
        blob: bytes | None
        try:
            blob = pickle.dumps(exc)
        except Exception:
            blob = None
        outcome: tuple[Any, ...] = ("error", blob, type(exc).__name__, str(exc), remote)
    else:
        outcome = ("result", value)
    shutdown_logging()
    try:
        send(outcome)
    except Exception as exc:  # an unpicklable result
        send(("error", None, type(exc).__name__, f"the result cannot be sent back: {exc}", ""))
    answers.close()
    os._exit(0)  # no interpreter shutdown: threads a task left behind must not hold it
