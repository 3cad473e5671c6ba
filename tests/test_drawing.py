"""Charts for Dagster's metadata drawn in a process of their own (what `rs eval` does: vl-convert holds the
interpreter lock while it draws) are the charts drawn in the process itself, and a drawing process that
dies costs the drawing, never the chart."""

import os
import signal

import pytest

from rs_dagster.report import drawing

SPEC = {
    "data": {"values": [{"tokens": t, "share": t / 10} for t in range(10)]},
    "mark": "line",
    "encoding": {"x": {"field": "tokens", "type": "quantitative"}, "y": {"field": "share", "type": "quantitative"}},
}


@pytest.fixture
def drawing_process():
    with drawing.drawing_process():
        yield drawing._process
    assert drawing._process is None  # ended with the block: nothing outlives the command


def test_a_chart_drawn_in_the_drawing_process_is_the_chart_drawn_here(drawing_process):
    here = drawing.svg_markdown(SPEC, "a curve")
    there = drawing.markdown_soon(SPEC, "a curve").result(timeout=60)
    assert there == here and there.startswith("![a curve](data:image/svg+xml;base64,")
    (worker,) = drawing_process._processes.values()
    assert worker.pid != os.getpid()


def test_a_drawing_process_that_died_is_replaced_by_drawing_here(drawing_process):
    drawing.markdown_soon(SPEC, "first").result(timeout=60)
    (worker,) = drawing_process._processes.values()
    os.kill(worker.pid, signal.SIGKILL)
    worker.join(timeout=30)
    charts = [drawing.markdown_soon(SPEC, f"after {i}").result(timeout=60) for i in range(3)]
    assert charts == [drawing.svg_markdown(SPEC, f"after {i}") for i in range(3)]


def test_a_spec_that_cannot_be_drawn_fails_its_chart_with_the_drawings_error(drawing_process):
    with pytest.raises(ValueError):
        drawing.markdown_soon({"mark": "no-such-mark", "data": {"values": []}}, "broken").result(timeout=60)
    assert drawing.markdown_soon(SPEC, "next").result(timeout=60) == drawing.svg_markdown(SPEC, "next")  # the process still draws


def test_the_drawing_process_ends_with_the_command_and_never_holds_its_output(tmp_path):
    """A command that ends at once (a second Ctrl-C, a kill: the end of its block never runs) leaves no drawing
    process behind, and one reading the command's output to its end never waits for the drawing process."""
    import subprocess
    import sys
    import time

    script = (
        "import os\n"
        "from rs_dagster.report import drawing\n"
        "with drawing.drawing_process():\n"
        f"    drawing.markdown_soon({SPEC!r}, 'x').result(timeout=60)\n"
        "    (worker,) = drawing._process._processes.values()\n"
        "    print(worker.pid, os.readlink(f'/proc/{worker.pid}/fd/1'), os.readlink(f'/proc/{worker.pid}/fd/2'), flush=True)\n"
        "    os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pid, stdout, stderr = done.stdout.split()
    assert stdout == stderr == os.devnull  # not the command's pipes: a reader of its output never waits for it
    worker = int(pid)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.1)
    assert not _alive(worker), f"drawing process {worker} outlived its command"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
