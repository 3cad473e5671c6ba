"""Stopping an evaluation with Ctrl-C (or SIGTERM): the first one asks the process to stop, the second
ends it at once.

After the first, a process-wide stop is requested (`stop_requested()`): the Runner sends no new request
and starts no new attempt (the requests in flight are answered and their answers stored, as always), the
completions asset fails its run after storing what arrived (so its scope is not recorded as complete), and
no further Dagster run starts (`stop_if_requested()` before each). `run_stoppably` then raises `Interrupted`,
whose message says how many answers this process stored and how to resume; `rs` exits with 128 + the
signal's number (130 for Ctrl-C). The second signal ends the process at once with the same code: DuckDB
writes are transactions, so an interrupted one leaves nothing half-written, and every answer that arrived
is already committed to the response cache, so the next run asks only for the others.

Why the work runs off the main thread: Python runs signal handlers in the main thread only, and only
between bytecodes; a signal the kernel delivers to another thread (polars starts some at import) does
not interrupt a blocking wait of the main thread. So the main thread only polls, and the threads doing
the work (and the processes they start, such as Dagster's `tail` of captured output) block SIGINT:
a terminal sends Ctrl-C to the whole process group, and those children would otherwise die of it (Dagster's
helper with a KeyboardInterrupt traceback). Dagster itself installs its interrupt handlers only on the
main thread, so its runs in worker threads leave ours in place.

Only the standard library here: the Runner imports it."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stop = threading.Event()
_lock = threading.Lock()
_state = {"signal": 0, "stored": 0}


class Interrupted(Exception):
    """The evaluation stopped because a stop was requested; `code` is the exit status (128 + signal)."""

    def __init__(self, message: str, code: int = 128 + signal.SIGINT):
        super().__init__(message)
        self.code = code


def stop_requested() -> bool:
    return _stop.is_set()


def request_stop(signum: int = signal.SIGINT) -> None:
    with _lock:
        if not _stop.is_set():
            _state["signal"] = signum
            _stop.set()


def reset() -> None:
    """Forget a requested stop and the answers counted (tests that run evaluations in-process)."""
    with _lock:
        _stop.clear()
        _state.update(signal=0, stored=0)


def stop_if_requested(what: str) -> None:
    """Raise Interrupted instead of starting `what` once a stop is requested."""
    if _stop.is_set():
        raise Interrupted(f"stopped before {what}", _exit_code())


def count_stored(answers: int) -> None:
    """`answers` more answers are stored (committed) by this process."""
    with _lock:
        _state["stored"] += answers


def stored() -> int:
    return _state["stored"]


def _exit_code() -> int:
    return 128 + (_state["signal"] or signal.SIGINT)


def _name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def _arrived(count: int) -> str:
    if not count:
        return "no answer had arrived in this run"
    return f"the {count} answers that arrived in this run are stored" if count > 1 else "the one answer that arrived in this run is stored"


RESUME = "The same command with the same options sends only the requests still missing: an answer that arrived is never requested again."


def stopped_message() -> str:
    """What was kept and how to resume, after the first signal's stop."""
    return (f"Stopped by {_name(_state['signal'] or signal.SIGINT)}: no request was sent after it and no further run started; "
            f"{_arrived(stored())}. {RESUME}")


def run_stoppably(work: Callable[[], T], on_stop: Callable[[str], None] = lambda message: None) -> T:
    """`work()` in a worker thread while the main thread handles SIGINT and SIGTERM: the first requests
    the stop (and calls `on_stop` with a line to show), the second ends the process at once. If a stop was
    requested, raise Interrupted (with `stopped_message()`) once `work` has returned or raised; else return
    its result or raise its error. Off the main thread (where no handler can be set), just `work()`."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    terminal = os.dup(2)  # where the last words go: a Dagster run may have redirected fd 2 into its captured logs
    outcome: dict[str, object] = {}

    def handle(signum: int, frame: object) -> None:
        if not _stop.is_set():
            request_stop(signum)
            with contextlib.suppress(Exception):
                on_stop(f"{_name(signum)}: sending no new request; waiting for those in flight, whose answers are stored "
                        f"({_name(signum)} again stops at once)")
            return
        _exit_at_once(terminal, signum)

    def worker() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # inherited by its threads and their children
        try:
            outcome["result"] = work()
        except BaseException as error:
            outcome["error"] = error

    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    try:
        thread = threading.Thread(target=worker, name="rs-evaluation", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(0.1)  # polled: a signal handled meanwhile runs here, in the main thread
    finally:
        if not _stop.is_set():  # once stopping, a second signal ends the process until it exits
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(terminal)
    if _stop.is_set():
        raise Interrupted(stopped_message(), _exit_code())
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["result"]  # type: ignore[return-value]


def _exit_at_once(terminal: int, signum: int) -> None:
    """The second signal: say what is kept, show the cursor a progress bar may have hidden, and end."""
    try:
        cursor = "\x1b[?25h" if os.isatty(terminal) else ""
        os.write(terminal, f"{cursor}\nStopped at once by a second {_name(signum)}: every answer that arrived is kept (in the "
                           f"response cache; {stored()} already in the warehouse). {RESUME}\n".encode())
    finally:
        os._exit(_exit_code())
