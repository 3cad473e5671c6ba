"""Vega-Lite specs drawn to SVG markdown for Dagster's metadata, in this process or in a process of its own.

vl-convert holds the interpreter lock while it draws (measured: a Python thread ran at 6% of its speed
while another drew), so in `rs eval`, whose runs go side by side in threads, every chart of every run
(~300 ms a model × task partition: points, compression, survival and hazard) stopped all the others.
`rs eval` whose runs go side by side therefore draws in one process of its own for the length of its runs
(drawing_process); every other caller (one run at a time, a run the daemon or the UI launched, a test)
draws where it is, when it asks. A drawing
process that dies is replaced by drawing here: a chart never fails for it.
This module imports nothing of the lab, so the drawing process starts with vl-convert alone."""

from __future__ import annotations

import base64
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

import vl_convert

_TINY = {"data": {"values": [{"x": 0}]}, "mark": "point", "encoding": {"x": {"field": "x", "type": "quantitative"}}}

_process: ProcessPoolExecutor | None = None
_users = 0
_starting = threading.Lock()


def svg_markdown(spec: dict, title: str) -> str:
    """Markdown with the chart inlined as SVG: vector, a fifth of the PNG's bytes in the event log, and a third
    of its drawing time (190 ms for the survival chart as PNG)."""
    svg = vl_convert.vegalite_to_svg(spec)
    return f"![{title}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"


def _drawing_process_starts() -> None:
    """Ctrl-C is the command's to handle (it stops after the runs in flight, which may still draw): ignored here.
    The command's output is not this process's: stdout and stderr go to /dev/null, so a caller reading the
    command's output to its end (a pipe) never waits for this process. And it ends when the command does, however
    the command ends (a second Ctrl-C or a kill skips the end of the `drawing_process` block)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    os.close(quiet)
    command = os.getppid()

    def end_with_the_command() -> None:
        while os.getppid() == command:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=end_with_the_command, name="rs-draw-watch", daemon=True).start()


def _warm() -> None:
    vl_convert.vegalite_to_svg(_TINY)  # vl-convert's JavaScript runtime starts on its first drawing (~0.4 s)


def warm_up_here() -> None:
    """Start vl-convert's runtime in this process in the background, so the first run with a chart in its
    metadata does not wait for it (what `rs eval` does when it draws here: one run at a time)."""
    threading.Thread(target=_warm, name="rs-draw-warm-up", daemon=True).start()


@contextmanager
def drawing_process() -> Iterator[None]:
    """Within the block, draw this process's charts in a process of their own: started (and warmed up while the
    caller goes on: its interpreter and vl-convert's runtime start while the first runs start), shared by
    nested blocks, and ended with the last of them, so nothing outlives the command."""
    global _process, _users
    with _starting:
        if _process is None:
            _process = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_drawing_process_starts)
            _process.submit(_warm)
        _users += 1
    try:
        yield
    finally:
        with _starting:
            _users -= 1
            ending, _process = (_process, None) if _users == 0 else (None, _process)
        if ending is not None:
            ending.shutdown(wait=True, cancel_futures=True)


def markdown_soon(spec: dict, title: str) -> Future[str]:
    """svg_markdown(spec, title), drawn while the caller goes on; `.result()` is the markdown or the drawing's error."""
    process = _process
    drawn: Future[str] = Future()
    if process is None:
        _drawn_here(drawn, spec, title)
        return drawn

    def landed(there: Future[str]) -> None:
        try:
            drawn.set_result(there.result())
        except BrokenProcessPool:
            _drawn_here(drawn, spec, title)
        except BaseException as error:  # the drawing's own error (a bad spec) is the caller's
            drawn.set_exception(error)

    try:
        process.submit(svg_markdown, spec, title).add_done_callback(landed)
    except (BrokenProcessPool, RuntimeError):  # broken, or shut down at exit
        _drawn_here(drawn, spec, title)
    return drawn


def _drawn_here(drawn: Future[str], spec: dict, title: str) -> None:
    try:
        drawn.set_result(svg_markdown(spec, title))
    except Exception as error:
        drawn.set_exception(error)
