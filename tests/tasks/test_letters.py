"""letters: answers re-counted from the question text, difficulty knobs measured, parser on realistic
outputs, bad parameters rejected."""

from __future__ import annotations

import re
from collections import Counter
from statistics import mean

import pytest

from rs_dagster.tasks.manifold import TIERS
from task_harness import ROOT, TaskHarness

H = TaskHarness("letters")
TASK = H.task
WORD_LIST = {
    line.strip() for line in (ROOT / "rs_dagster" / "tasks" / "data" / "words.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def _read(question: str) -> tuple[list[str], list[str], list[str]]:
    """(target letters, counted words, struck-out words) as the question states them."""
    instruction, listing = question.split("\n\nWords: ")
    targets = re.findall(r"'([a-z])'", instruction.split(" in the words below")[0])
    entries = listing.split(", ")
    return targets, [w for w in entries if not w.startswith("[")], [w[1:-1] for w in entries if w.startswith("[")]


def _recount(question: str) -> str:
    targets, counted, _ = _read(question)
    letters = Counter(c for word in counted for c in word.casefold())
    return str(sum(letters[t] for t in targets))


@pytest.mark.parametrize("tier", TIERS)
def test_answers_match_a_recount_of_the_text(tier):
    checked = H.tier_items(tier)
    assert [item for _, item in checked if _recount(item.question) != item.answer] == []


def _point(**changes):
    return {"words": 32, "targets": 2, "distractors": 4, "case_noise": 0.0, **changes}


def test_words_targets_distractors_and_case_noise_show_in_the_text():
    for params in H.points():
        for item in H.items(params, 16):
            targets, counted, struck = _read(item.question)
            assert (len(targets), len(counted), len(struck)) == (params["targets"], params["words"], params["distractors"])
            assert all(word.isalpha() for word in counted + struck)
    for distractors in (4, 16, 64):
        for item in H.items(_point(distractors=distractors), 32):
            targets, counted, struck = _read(item.question)
            tempting = [w for w in struck if any(t in w.casefold() for t in targets)]
            unused = WORD_LIST - {w.casefold() for w in counted}
            available = [w for w in unused if any(t in w for t in targets)]
            assert len(tempting) == min(len(struck), len(available)), "struck words should contain a target letter"
    shares = [mean(sum(map(str.isupper, "".join(_read(i.question)[1]))) / len("".join(_read(i.question)[1]))
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
