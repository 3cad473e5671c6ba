"""sort: answers re-derived from the prompt text alone by a hand-written merge sort that follows the
prompt's words, on every tier and the whole grid; difficulty knobs measured, parser on realistic outputs."""

import itertools
import json
import os
import re
import statistics

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

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


WRITE = {
    "on one line, separated by commas": ", ".join,
    "one word per line": "\n".join,
    "as a JSON list of strings": json.dumps,
    "as a numbered list, one word per line (1. first, 2. second, ...)":
        lambda words: "\n".join(f"{i}. {word}" for i, word in enumerate(words, 1)),
}


def solve(prompt):
    """The prompt's words: sort alphabetically with upper- and lowercase letters equal (a word before every
    longer word it begins), keep repeats and spellings, write the list in the format asked for. Words
    equal but for case may come in either order (the prompt leaves it open, scoring ignores case): this
    keeps them in the order shown."""
    assert "Sort the following words alphabetically, ignoring case (treat upper- and lowercase letters as equal)" in prompt
    assert "Keep every word, including repeats, and write each word as it is spelled below." in prompt
    words = re.search(r"^Words: (.+)$", prompt, re.M).group(1).split(" ")
    wanted = re.search(r"^Give the sorted list (.+)\.$", prompt, re.M).group(1)
    return WRITE[wanted]([word for _, word in merge_sort([(folded(w), w) for w in words])])


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


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_sort_that_follows_the_prompt(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if solve(H.prompt_text(item)) != item.answer]
    assert mismatches == []


def test_orders_breaking_the_prompts_rule_score_wrong():
    """Scoring ignores case, so it accepts either order of words equal but for case, and nothing else
    that breaks the prompt's rule: a code-point sort, or two neighbours swapped, scores wrong."""
    for _, item in H.tier_items("hard")[:200]:
        words = read_answer(item.answer, item.metadata["format"])
        assert H.correct(f"ANSWER: {solve(H.prompt_text(item))}", item)
        if sorted(words) != sorted(words, key=str.lower):
            assert not H.correct(f"ANSWER: {', '.join(sorted(words))}", item)
        swap = next(i for i in range(len(words) - 1) if words[i].lower() != words[i + 1].lower())
        swapped = [*words[:swap], words[swap + 1], words[swap], *words[swap + 2:]]
        assert not H.correct(f"ANSWER: {', '.join(swapped)}", item)


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
        shared = [len(os.path.commonprefix([a, b])) for a, b in itertools.pairwise(words)]  # noqa: RUF071 -- a character prefix is what is measured
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
