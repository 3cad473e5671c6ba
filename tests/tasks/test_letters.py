"""letters: answers re-counted from the prompt text alone (letters named, words listed, brackets, case),
difficulty knobs measured, parser on realistic outputs, bad parameters rejected."""

from __future__ import annotations

import re
from collections import Counter
from statistics import mean

import pytest
from task_harness import ROOT, TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("letters")
TASK = H.task
WORD_LIST = {
    line.strip() for line in (ROOT / "rs_dagster" / "tasks" / "data" / "words.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
ONE_LETTER = re.compile(r"Count how many times the letter '([a-z])' occurs in the words below, (.+)")
LETTERS = re.compile(
    r"Count how many times the letters ((?:'[a-z]', )*'[a-z]' and '[a-z]') occur in total in the words below, (.+)"
)
RULES = "treating upper and lower case alike. Words in square brackets are struck out: do not count their letters."


def _read(prompt: str) -> tuple[list[str], list[str], list[str]]:
    """(target letters, counted words, struck-out words) as the prompt states them."""
    instruction, listing, _answer_format = prompt.split("\n\n")
    if m := ONE_LETTER.fullmatch(instruction):
        targets, rules = [m[1]], m[2]
    else:
        named, rules = LETTERS.fullmatch(instruction).groups()
        targets = re.findall(r"'([a-z])'", named)
    assert rules == RULES and len(set(targets)) == len(targets)
    entries = listing.removeprefix("Words: ").split(", ")
    assert all(re.fullmatch(r"[A-Za-z]+|\[[A-Za-z]+\]", entry) for entry in entries)
    return targets, [w for w in entries if not w.startswith("[")], [w[1:-1] for w in entries if w.startswith("[")]


def _recount(prompt: str) -> str:
    targets, counted, _ = _read(prompt)
    letters = Counter(c for word in counted for c in word.casefold())
    return str(sum(letters[t] for t in targets))


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_recount_of_the_prompt_text(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if _recount(H.prompt_text(item)) != item.answer]
    assert mismatches == []


def _point(**changes):
    return {"words": 32, "targets": 2, "distractors": 4, "case_noise": 0.0, **changes}


def test_words_targets_distractors_and_case_noise_show_in_the_text():
    for params in H.points():
        for item in H.items(params, 16):
            targets, counted, struck = _read(H.prompt_text(item))
            assert (len(targets), len(counted), len(struck)) == (params["targets"], params["words"], params["distractors"])
            assert all(word.isalpha() for word in counted + struck)
    for distractors in (4, 16, 64):
        for item in H.items(_point(distractors=distractors), 32):
            targets, counted, struck = _read(H.prompt_text(item))
            tempting = [w for w in struck if any(t in w.casefold() for t in targets)]
            unused = WORD_LIST - {w.casefold() for w in counted}
            available = [w for w in unused if any(t in w for t in targets)]
            assert len(tempting) == min(len(struck), len(available)), "struck words should contain a target letter"
    shares = [mean(sum(map(str.isupper, "".join(_read(H.prompt_text(i))[1]))) / len("".join(_read(H.prompt_text(i))[1]))
                   for i in H.items(_point(case_noise=noise), 32)) for noise in (0.0, 0.25, 0.5)]
    assert shares[0] == 0 and 0.2 < shares[1] < 0.3 and 0.45 < shares[2] < 0.55
    answers = [mean(int(i.answer) for i in H.items(_point(words=n, targets=3), 32)) for n in (4, 16, 64)]
    assert answers == sorted(answers) and answers[2] > 8 * answers[0]


def test_parser_on_realistic_outputs():
    item = H.items(_point(words=16, targets=3), 4)[0]
    answer, decoy = item.answer, str(int(item.answer) + 3)
    outputs = [
        f"Word 1 has 2, word 2 has 0, word 3 has 1 ... running total {decoy}, minus the struck-out words.\n\nANSWER: {answer}",
        f"**ANSWER: {answer}**",
        f"So the count is $\\boxed{{{answer}}}$.",
        f"ANSWER: {answer}\n\nI skipped the {decoy} letters in brackets.",
        f"final answer: {answer} occurrences",
        f"The answer is {answer}.",
    ]
    H.assert_parses(item, outputs, decoy, unparsable=("I lost count, sorry.",))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (_point(words=0), "words"),
        (_point(targets=0), "targets"),
        (_point(targets=27), "targets"),
        (_point(distractors=-1), "distractors"),
        (_point(case_noise=1.5), "case_noise"),
        (_point(words=256, distractors=256), "words + distractors"),
        (_point(letters=3), "letters"),
    ],
)
def test_bad_params_are_rejected(params, field):
    H.assert_rejected(params, field)
