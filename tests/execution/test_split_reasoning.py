"""Where reasoning ends and the answer begins, for each way servers deliver reasoning."""

import pytest

from rs_dagster.execution.reasoning import split_reasoning


@pytest.mark.parametrize(
    "content, field, expected",
    [
        ("ANSWER: 7", "3 + 4 = 7", ("ANSWER: 7", "3 + 4 = 7")),
        ("<think>3 + 4 = 7</think>\nANSWER: 7", None, ("ANSWER: 7", "3 + 4 = 7")),
        ("<think>3 + 4 is", None, ("", "3 + 4 is")),  # cut off inside the reasoning
        ("3 + 4 = 7\n</think>\n\nANSWER: 7", None, ("ANSWER: 7", "3 + 4 = 7")),  # <think> was in the prompt
        (None, "3 + 4 is", ("", "3 + 4 is")),
        ("ANSWER: 7", None, ("ANSWER: 7", None)),
    ],
    ids=["field", "inline", "unclosed", "opened-by-template", "null-content", "no-reasoning"],
)
def test_split_reasoning(content, field, expected):
    assert split_reasoning(content, field) == expected
