"""shuffle: answers re-derived by reading the story sentence by sentence and replaying it."""

import re
import statistics

import pytest

from task_harness import TaskHarness

H = TaskHarness("shuffle")
TASK = H.task
# Words that mark a swap as talked about but not done.
NOT_DONE = ("doesn't", "refuses", "change their minds", "says no", "decides against")


def read_story(item):
    """(start holdings, [(a, b, happens)], asked person), read from the question text."""
    setting, story, asked_line = item.question.split("\n\n")
    start = setting.split("At the start: ")[1].rstrip(".")
    holdings = {}
    for clause in start.split("; "):
        person = clause.split(" ")[0]
        held = [it for it in item.metadata["items"] if re.search(rf"\b{re.escape(it)}\b", clause[len(person):])]
        assert len(held) == 1, clause
        holdings[person] = held[0]
    events = []
    for sentence in re.split(r"(?<=\.) ", story):
        names = list(dict.fromkeys(word for word in re.findall(r"[A-Z][a-z]+", sentence) if word in holdings))
        assert len(names) == 2 and names[0] != names[1], sentence
        events.append((names[0], names[1], not any(marker in sentence for marker in NOT_DONE)))
    asked = next(name for name in holdings if re.search(rf"\b{name}\b", asked_line))
    return holdings, events, asked


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


@pytest.mark.parametrize("tier", ["easy", "medium", "hard"])
def test_replaying_the_story_gives_the_answer(tier):
    for params, item in H.tier_items(tier):
        holdings, events, asked = read_story(item)
        assert replay(holdings, events, asked) == item.answer, item.question
        assert sum(happens for _, _, happens in events) == params["swaps"]
        assert sum(not happens for _, _, happens in events) == params["confounders"]


def test_people_sets_holders_items_and_guess_chance():
    for people in (3, 7, 10):
        for item in H.items({"people": people, "swaps": 5, "confounders": 2}, 50):
            holdings, _, _ = read_story(item)
            assert len(holdings) == len(set(holdings.values())) == people
            assert item.guess_chance == 1 / people


def test_confounders_mislead_a_reader_who_takes_them_literally():
    misled = {}
    for confounders in (0, 5, 20):
        items = H.items({"people": 5, "swaps": 10, "confounders": confounders}, 300)
        wrong = [replay(*read_story(item), count_everything=True) != item.answer for item in items]
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
