"""shuffle: answers re-derived from the prompt text alone by reading the story sentence by sentence (a
sentence of no known form fails the test) and replaying the swaps that happen."""

import re
import statistics

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("shuffle")
TASK = H.task
SETTING = re.compile(r"(.+?) are (.+?)\. At the start: (.+)\.")
HOLDING = re.compile(r"(\w+) (?:has|is dancing with|is playing) (.+)")
CONNECTIVE = re.compile(r"(?:First,|Then|Next,|After that,|Later,) (.+)")
SWAPS = tuple(map(re.compile, (
    r"(?P<a>\w+) and (?P<b>\w+) (?:swap|switch|exchange|trade) (?P<noun>\w+)\.",
    r"(?P<a>\w+) (?:trades|swaps) (?P<noun>\w+) with (?P<b>\w+)\.",
)))
# Sentences that talk about a swap and say, in their own words, that it does not happen.
NOT_DONE = tuple(map(re.compile, (
    r"(?P<a>\w+) considers trading (?P<noun>\w+) with (?P<b>\w+) but doesn't\.",
    r"(?P<a>\w+) offers to swap (?P<noun>\w+) with (?P<b>\w+), but (?P=b) refuses\.",
    r"(?P<a>\w+) and (?P<b>\w+) almost switch (?P<noun>\w+), but change their minds\.",
    r"(?P<a>\w+) asks (?P<b>\w+) for a trade, but (?P=b) says no\.",
    r"(?P<a>\w+) thinks about swapping (?P<noun>\w+) with (?P<b>\w+), then decides against it\.",
)))
QUESTIONS = {  # what is asked -> how the answer is read off the held thing as the story writes it
    r"Which book does (\w+) have at the end\?": lambda held: held,
    r"Who is (\w+) dancing with at the end\?": lambda held: held,
    r"Which position is (\w+) playing at the end\?": lambda held: held,
    r"Which gift does (\w+) have at the end\?": lambda held: re.fullmatch(r"an? ([a-z]+)", held)[1],
    r"What color is the ball (\w+) has at the end\?": lambda held: re.fullmatch(r"an? ([a-z]+) ball", held)[1],
}


def read_story(prompt):
    """(start holdings as written, [(a, b, happens)], the question's line) from the prompt text."""
    setting, story, question, _instruction = prompt.split("\n\n")
    listing, description, start = SETTING.fullmatch(setting).groups()
    people = re.split(r", and |, | and ", listing)
    holdings = dict(HOLDING.fullmatch(clause).groups() for clause in start.split("; "))
    assert list(holdings) == people and len(set(holdings.values())) == len(people)
    events = []
    for sentence in re.split(r"(?<=\.) ", story):
        said = CONNECTIVE.fullmatch(sentence)[1]
        happens = next(filter(None, (p.fullmatch(said) for p in SWAPS)), None)
        m = happens or next(filter(None, (p.fullmatch(said) for p in NOT_DONE)), None)
        assert m, f"unknown sentence: {sentence}"
        assert m["a"] != m["b"] and {m["a"], m["b"]} <= set(people), sentence
        assert m.re.groupindex.get("noun") is None or m["noun"][:-1] in description, "swaps what each has"
        events.append((m["a"], m["b"], happens is not None))
    return holdings, events, question


def replay(holdings, events, asked, count_everything=False):
    """Follow the asked person's item through a permutation of seats rather than a dict of holdings."""
    people = list(holdings)
    seat_of = {person: i for i, person in enumerate(people)}
    item_at = [holdings[p] for p in people]
    for a, b, happens in events:
        if happens or count_everything:
            i, j = seat_of[a], seat_of[b]
            item_at[i], item_at[j] = item_at[j], item_at[i]
    return item_at[seat_of[asked]]


def solve(prompt, count_everything=False):
    """(the answer the question asks for, the held thing as the story writes it) by the prompt's words;
    with count_everything, what a reader who also counts the swaps that do not happen gets."""
    holdings, events, question = read_story(prompt)
    pattern, answer_of = next((p, f) for p, f in QUESTIONS.items() if re.fullmatch(p, question))
    held = replay(holdings, events, re.fullmatch(pattern, question)[1], count_everything)
    return answer_of(held), held


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_replaying_the_prompt_text_gives_the_answer(tier):
    """The question's answer is the stored one, and the instruction's form, the item "exactly as the story
    does" ("an hourglass", "a red ball"), scores as correct too."""
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = []
    for _, item in checked:
        answer, as_written = solve(H.prompt_text(item))
        if answer != item.answer or not H.correct(f"ANSWER: {as_written}", item):
            mismatches.append((item.question, item.answer, answer, as_written))
    assert mismatches == []


def test_people_swaps_and_confounders_show_in_the_text():
    for params in H.points():
        for item in H.items(params, 32):
            holdings, events, _ = read_story(H.prompt_text(item))
            assert len(holdings) == params["people"] and item.guess_chance == 1 / params["people"]
            assert sum(happens for _, _, happens in events) == params["swaps"]
            assert sum(not happens for _, _, happens in events) == params["confounders"]


def test_confounders_mislead_a_reader_who_counts_every_swap_mentioned():
    misled = {}
    for confounders in (0, 5, 20):
        items = H.items({"people": 5, "swaps": 10, "confounders": confounders}, 300)
        wrong = [solve(H.prompt_text(item), count_everything=True)[0] != item.answer for item in items]
        assert wrong == [item.metadata["confounders_would_change_answer"] for item in items]
        misled[confounders] = statistics.mean(wrong)
    assert misled[0] == 0 < misled[5] < misled[20]


def test_more_swaps_move_items_further():
    """With few swaps the asked person often still holds their own item; with many, about 1/people."""
    kept = {}
    for swaps in (1, 3, 40):
        items = H.items({"people": 5, "swaps": swaps, "confounders": 0}, 400)
        kept[swaps] = statistics.mean(item.metadata["answer_is_start_item"] for item in items)
    assert kept[1] == 0 and kept[40] < 0.35


def test_every_manifold_point_yields_128_distinct_items():
    for point in H.spec.points():
        assert len({item.question for item in H.items(point.params, 128)}) == 128


@pytest.fixture(scope="module")
def items_by_domain():
    found = {}
    for item in H.items({"people": 5, "swaps": 5, "confounders": 3}, 200):
        found.setdefault(item.metadata["domain"], item)
    assert len(found) == 5
    return found


def test_parser_on_realistic_outputs(items_by_domain):
    for item in items_by_domain.values():
        answer = item.answer
        decoy = next(it for it in item.metadata["items"] if it != answer)
        outputs = [
            f"After swap 3 {item.metadata['asked']} holds {decoy}, then it changes.\nANSWER: {answer}",
            f"**ANSWER: {answer}**",
            f"So the final item is $\\boxed{{\\text{{{answer}}}}}$.",
            f"answer: {answer.upper()}\nNote that {decoy} went around twice.",
            f"Final answer: {answer.lower()}.",
            f"Tracking... {decoy} ... done.\n{answer}",
        ]
        H.assert_parses(item, outputs, decoy, unparsable=("I lost track of the swaps.",))


def test_ball_answers_read_with_the_noun(items_by_domain):
    item = items_by_domain["balls"]
    assert TASK.parse(f"ANSWER: the {item.answer} ball", item.metadata).value == item.answer


@pytest.mark.parametrize(
    "params, field",
    [
        ({"people": 1, "swaps": 3}, "people"),
        ({"people": 11, "swaps": 3}, "people"),
        ({"people": 3, "swaps": 0}, "swaps"),
        ({"people": 3, "swaps": 3, "confounders": -2}, "confounders"),
        ({"people": 3, "swaps": 3, "domain": "books"}, "domain"),
    ],
)
def test_bad_params_are_rejected_naming_the_field(params, field):
    H.assert_rejected(params, field)


def test_articles_follow_the_sound_of_the_word():
    """"an hourglass", "an orange ball", "a umbrella" never; checked over every gift and ball item written."""
    from rs_dagster.tasks.shuffle import DOMAINS, _written

    written = {_written(DOMAINS[d], item) for d in ("gifts", "balls") for item in DOMAINS[d].items}
    assert {"an hourglass", "an umbrella", "an orange ball", "a watch", "a kite", "a red ball"} <= written
    stories = [item.question for _, item in H.space_items() if item.metadata["domain"] == "gifts"]
    assert any("an hourglass" in text for text in stories)
    assert not any(re.search(r"\ba (?:hourglass|[aeiou])", text) for text in stories)
