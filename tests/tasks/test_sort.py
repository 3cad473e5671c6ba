"""sort: answers re-derived by a hand-written merge sort over the words read back from the question."""

import json
import os
import re
import statistics

import pytest

from task_harness import TaskHarness

H = TaskHarness("sort")
TASK = H.task


def question_words(item):
    return re.search(r"^Words: (.+)$", item.question, re.M).group(1).split(" ")


def folded(word):
    """Lowercase by code-point arithmetic, not str.lower."""
    return [ord(c) + 32 if "A" <= c <= "Z" else ord(c) for c in word]


def merge_sort(keyed):
    """A stable merge sort of (key, word) pairs by key."""
    if len(keyed) <= 1:
        return keyed
    left, right = merge_sort(keyed[: len(keyed) // 2]), merge_sort(keyed[len(keyed) // 2 :])
    merged, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if left[i][0] <= right[j][0]:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged + left[i:] + right[j:]


def read_answer(answer, fmt):
    """The answer's words, read with the format's own reader."""
    if fmt == "json":
        return json.loads(answer)
    if fmt == "comma":
        return answer.split(", ")
    lines = answer.split("\n")
    if fmt == "numbered":
        assert [line.split(". ")[0] for line in lines] == [str(i) for i in range(1, len(lines) + 1)]
        return [line.split(". ", 1)[1] for line in lines]
    return lines


@pytest.mark.parametrize("tier", ["easy", "medium", "hard"])
def test_answers_match_an_independent_sort(tier):
    for params, item in H.tier_items(tier):
        words = question_words(item)
        answer = read_answer(item.answer, params["format"])
        assert sorted(answer) == sorted(words)  # the same words, spelled as shown
        assert [folded(w) for w in answer] == [key for key, _ in merge_sort([(folded(w), w) for w in words])], item.question
        assert TASK.parse(f"ANSWER: {item.answer}", item.metadata).value == ",".join(w.lower() for w in answer)


def test_word_count_duplicates_and_case_mutation_are_exact():
    for words, duplicates, mutation in ((10, 0, 0.0), (20, 2, 0.25), (64, 8, 1.0)):
        params = {"words": words, "case_mutation": mutation, "duplicates": duplicates, "shared_prefix": 2, "format": "comma"}
        for item in H.items(params, 100):
            shown = question_words(item)
            assert len(shown) == words
            assert len(shown) - len({w.lower() for w in shown}) == duplicates
            assert sum(w != w.lower() for w in shown) == round(mutation * words)


def test_case_mutation_breaks_code_point_sorting():
    broken = {}
    for mutation in (0.0, 0.25, 1.0):
        params = {"words": 20, "case_mutation": mutation, "duplicates": 2, "shared_prefix": 2, "format": "comma"}
        items = H.items(params, 200)
        broken[mutation] = statistics.mean(
            [w.lower() for w in sorted(question_words(i))] != [w.lower() for w in read_answer(i.answer, "comma")] for i in items
        )
    assert broken[0.0] == 0 < broken[0.25] <= broken[1.0]


def test_shared_prefix_makes_neighbours_agree_longer():
    def mean_shared(item):
        words = [w.lower() for w in read_answer(item.answer, "comma")]
        shared = [len(os.path.commonprefix([a, b])) for a, b in zip(words, words[1:])]
        return statistics.mean(shared)

    depth = {}
    for prefix in (0, 2, 3, 4):
        params = {"words": 20, "case_mutation": 0.0, "duplicates": 0, "shared_prefix": prefix, "format": "comma"}
        items = H.items(params, 150)
        assert all(abs(mean_shared(i) - i.metadata["mean_shared_prefix"]) < 1e-3 for i in items)
        depth[prefix] = statistics.mean(mean_shared(i) for i in items)
    assert depth[0] < depth[2] < depth[3] < depth[4]
    assert depth[4] > depth[0] + 1.5


def test_every_manifold_point_yields_128_distinct_items():
    for point in H.spec.points():
        assert len({item.question for item in H.items(point.params, 128)}) == 128


def item_in(fmt):
    params = {"words": 6, "case_mutation": 0.5, "duplicates": 1, "shared_prefix": 2, "format": fmt}
    return H.items(params, 1)[0]


@pytest.mark.parametrize("fmt", ["comma", "lines", "json", "numbered"])
def test_parser_on_realistic_outputs(fmt):
    item = item_in(fmt)
    words = read_answer(item.answer, fmt)
    decoy = list(reversed(words))
    cot = f"First pass: {', '.join(decoy)}\nComparing the second letters of {words[0]} and {words[1]}...\n"
    outputs = [
        f"{cot}ANSWER: {item.answer}",
        f"{cot}ANSWER:\n{item.answer}\n\nThese are sorted ignoring case.",
        f"{cot}**ANSWER:** {item.answer.upper()}",
        f"{cot}\\boxed{{{', '.join(words)}}}",
        f"{cot}answer: {json.dumps([w.lower() for w in words])}",
        f"{cot}The sorted list is: {', '.join(words[:-1])} and {words[-1]}.",
        f"{cot}Final list:\n" + "\n".join(f"- {w}" for w in words),
        f"{cot}{item.answer}",
    ]
    H.assert_parses(item, outputs, ", ".join(decoy), unparsable=("I would need more time to sort these.",))


def test_multiline_json_after_the_answer_marker():
    item = item_in("json")
    words = read_answer(item.answer, "json")
    text = "ANSWER:\n```json\n" + json.dumps(words, indent=2) + "\n```"
    assert TASK.score(TASK.parse(text, item.metadata).value, item.answer, item.metadata)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"words": 1}, "words"),
        ({"words": 10, "case_mutation": 1.5}, "case_mutation"),
        ({"words": 10, "duplicates": 9}, "duplicates"),
        ({"words": 10, "shared_prefix": 9}, "shared_prefix"),
        ({"words": 150, "shared_prefix": 5}, "shared_prefix"),
        ({"words": 10, "format": "yaml"}, "format"),
    ],
)
def test_bad_params_are_rejected_naming_the_field(params, field):
    H.assert_rejected(params, field)
