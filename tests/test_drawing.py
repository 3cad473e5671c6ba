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
