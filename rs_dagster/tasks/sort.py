"""sort: sort words alphabetically, ignoring case, and write them in a stated list format.

Scoring compares the word sequence only, case-insensitively: the parser reads the list in any of the
formats (comma-separated, one per line, JSON list, numbered list) and normalises it to its lowercase
words joined by commas, so "Apple, banana" and `["APPLE", "Banana"]` score the same. Format compliance
is recorded by the answer's shape, not scored.

Difficulty: `words` (list length, duplicates included), `case_mutation` (share of words written in
Title, UPPER or mIxEd case, which breaks naive code-point sorting), `duplicates` (how many of the
words repeat an earlier one, possibly in another case), `shared_prefix` (words come in clusters that
share their first N letters, so comparisons reach deep into the words), `format`.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import AnswerParser, Parsed, clean, marked_answers
from rs_dagster.tasks.base import Item, Task, TaskParams, uint32_draws

VOCABULARY = tuple(dict.fromkeys("""
concert concern concept conceal concede conceive condense condition conduct confide confirm conflict confuse
connect conquer consent consider console constant construct consult consume contact contain content contest
context continue contract contrast control convert convey convince combat combine comfort command comment
commerce commit common compact company compare compass compel compete compile complain complete complex comply
compose compound compute comrade preach precise predict prefer prefix prepare present preserve preside press
pretend pretty prevent preview previous probe problem proceed process produce product profess profile profit
program progress project promise promote prompt proof proper property propose protect protest proud prove
provide province interact intercept interest interface interfere interior internal interpret interrupt interval
interview transact transfer transform transit translate transmit transport trap trash travel tray tread treat
treaty tree trek tremble trend trial tribe trick trigger trim trip triumph trivial trophy trouble truck true
trumpet trunk trust truth straight strain strand strange strap straw stream street strength stress stretch
strict stride strike string strip stripe strive stroke strong struggle stable stack stadium staff stage stain
stair stake stale stall stamp stand staple star stare start state station statue status stay carbon card care
career careful cargo carpet carriage carrot carry cart carton cartoon carve marble march margin marine mark
market marriage marsh martial marvel parade paradox paragraph parallel parcel pardon parent park parlor parody
parrot part partner party perceive percent perfect perform perfume perhaps period permit persist person persuade
space spade spare spark speak spear special species speech speed spell spend sphere spice spider spike spin
spine spiral spirit splash split spoil sponge spoon sport spot spray spread spring sprint debate debris decade
decay deceive decide declare decline decorate decrease dedicate deep defeat defend define degree delay delight
deliver demand denial dense deny depart depend deposit depth derive describe desert design desire desk detail
detect develop device devote react read ready real realm reason rebel recall receive recent recipe record
recover reduce refer reflect reform refuse region regret reject relate relax release rely remain remark remedy
remind remote remove render renew repair repeat replace reply report rescue resist resolve resource respect
respond rest result retain retire return reveal review reward uncle under undergo underline undermine
understand undertake undo uneven unfair unfold uniform union unique unit unite universe unknown unlock until
unusual overall overcome overdue overflow overhead overlap overlook overnight overseas overtake overturn
overview overwhelm brace bracket brain brake branch brand brass brave bread break breakfast breath breeze brick
bride bridge brief bright brilliant bring brisk broad broken bronze brother brown brush apple banana cherry
dolphin eagle falcon garden harbor island jungle kettle ladder meadow needle orchid pepper quartz river saddle
tiger umbrella violin walnut yellow zebra anchor bottle candle donkey engine feather guitar helmet igloo jacket
kitten lemon mirror napkin ocean pillow quiver rocket silver tunnel velvet window yogurt zipper glacier granite
gravel gravity graze great green greet grief grill grind grip groove ground group grove grow growl growth
plain plan planet plank plant plaster plastic plate platform play plaza plead pleasant please pledge plenty
plot plow pluck plug plum plume plunge shadow shaft shake shallow shame shape share shark sharp shatter shave
shelf shell shelter shield shift shine ship shirt shiver shock shoe shoot shore short shoulder shout shovel
show shower shrink
""".split()))
Format = Literal["comma", "lines", "json", "numbered"]
FORMAT_TEXT = {
    "comma": "on one line, separated by commas",
    "lines": "one word per line",
    "json": "as a JSON list of strings",
    "numbered": "as a numbered list, one word per line (1. first, 2. second, ...)",
}


def _clusters(prefix_length: int) -> list[list[str]]:
    """Vocabulary groups sharing their first `prefix_length` letters (two words at least)."""
    groups: dict[str, list[str]] = {}
    for word in VOCABULARY:
        if len(word) > prefix_length:
            groups.setdefault(word[:prefix_length], []).append(word)
    return [group for group in groups.values() if len(group) >= 2]


MAX_SHARED_PREFIX = 5
CLUSTERS = {length: _clusters(length) for length in range(1, MAX_SHARED_PREFIX + 1)}
CAPACITY = {0: len(VOCABULARY)} | {length: sum(map(len, groups)) for length, groups in CLUSTERS.items()}


def _common_prefix(a: str, b: str) -> int:
    for n, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return n
    return min(len(a), len(b))


# ---- parsing: the cascade of parsing.py, where a value is a whole list, inline or one item per line ----
_WORD = r"[A-Za-z]+"
_SEPARATOR = r"(?:\s*[,;|]\s*(?:and\s+)?|\s+and\s+)"
INLINE_LIST = rf"[\"']?{_WORD}[\"']?(?:{_SEPARATOR}[\"']?{_WORD}[\"']?)+"
_ITEM_LINE = re.compile(rf"^\s*(?:[-*•]|\d+[.)])?\s*[\"'`]?({_WORD})[\"'`]?\s*,?\s*$")
_BRACKET_LINE = re.compile(r"^\s*[\[\]]\s*,?\s*$")


def _normalize_words(value: str) -> str:
    """The canonical form scoring compares: lowercase words joined by commas (separators, quotes,
    brackets and list numbering dropped; 'and' between items read as a separator)."""
    words = re.findall(_WORD, re.sub(r"(?i)(?:,\s*|\s+)and\s+", ",", value))
    return ",".join(word.lower() for word in words)


def _item_block(lines: list[str]) -> list[str] | None:
    """Words of the run of one-word item lines at the start of `lines` (bullets, numbers, JSON quotes,
    bracket lines and code fences allowed; blank lines before the run skipped); None unless two items
    at least."""
    words: list[str] = []
    for line in lines:
        if line.lstrip().startswith("```"):  # a code fence around the list
            continue
        cleaned = clean(line)
        if not cleaned:
            if words:
                break
            continue
        if _BRACKET_LINE.match(cleaned):
            continue
        match = _ITEM_LINE.match(cleaned)
        if not match:
            break
        words.append(match.group(1))
    return words if len(words) >= 2 else None


@dataclass(frozen=True)
class ListParser(AnswerParser):
    """AnswerParser whose value is a list: after an answer marker the list is read inline, or from the
    item lines that follow. Rules keep their names and order: boxed, answer_line, answer_phrase,
    last_line (the last line if it is an inline list, else the run of item lines ending the text),
    last_value (the last inline list or item run anywhere)."""

    def _after_marker(self, rest: str, following: list[str]) -> str | None:
        inline = re.search(self.value_pattern, clean(rest), self.flags)
        if inline:
            return inline.group(0)
        block = _item_block([rest, *following])
        return ",".join(block) if block else None

    def parse(self, text: str | None) -> Parsed:
        if not text or not text.strip():
            return Parsed(None, None)
        lines = text.splitlines()
        for rule, fragment, start in marked_answers(text):
            if rule == "boxed":  # the list is inside the box, its items on lines (or LaTeX \\ breaks)
                rest, *following = fragment.replace("\\\\", "\n").splitlines() or [""]
            else:  # the list follows the marker on its line, or on the lines below
                rest, following = fragment, lines[text.count("\n", 0, start) + 1 :]
            if (value := self._after_marker(rest, following)) is not None:
                return Parsed(self.normalize(value), rule)
        filled = [line for line in lines if line.strip()]
        last = clean(filled[-1]).rstrip(".!?;:") if filled else ""
        if re.fullmatch(self.value_pattern, last, self.flags):
            return Parsed(self.normalize(last), "last_line")
        for end in range(len(filled), 0, -1):
            block = _item_block(filled[:end][::-1])
            if block:
                return Parsed(self.normalize(",".join(reversed(block))), "last_line" if end == len(filled) else "last_value")
            inline = re.findall(self.value_pattern, clean(filled[end - 1]), self.flags)
            if inline:
                return Parsed(self.normalize(inline[-1]), "last_value")
        return Parsed(None, None)


class SortParams(TaskParams):
    words: int = Field(ge=2, le=200, description="number of words shown, duplicates included")
    case_mutation: float = Field(0.0, ge=0.0, le=1.0, description="share of words written in a changed case")
    duplicates: int = Field(0, ge=0, le=100, description="words that repeat an earlier word")
    shared_prefix: int = Field(0, ge=0, le=MAX_SHARED_PREFIX, description="letters shared within word clusters")
    format: Format = "comma"

    @model_validator(mode="after")
    def _enough_distinct(self):
        if self.words - self.duplicates < 2:
            raise ValueError(f"duplicates={self.duplicates} leaves fewer than 2 distinct words of words={self.words}")
        available = CAPACITY[self.shared_prefix]
        if self.words - self.duplicates > available:
            raise ValueError(
                f"shared_prefix={self.shared_prefix}: only {available} vocabulary words share a prefix that long, "
                f"but words - duplicates = {self.words - self.duplicates} distinct words are needed"
            )
        return self


def _mutate_case(word: str, draw: int) -> str:
    """Title, UPPER or mIxEd case, the style and the mixed letters picked by the bits of one draw."""
    style, bits = draw % 3, draw >> 2
    if style == 0:
        return word.title()
    if style == 1:
        return word.upper()
    mixed = "".join([c.upper() if bits >> k & 1 else c for k, c in enumerate(word)])
    return mixed if mixed != word else word.upper()


def _distinct_words(count: int, shared_prefix: int, rng: random.Random) -> list[str]:
    """`count` vocabulary words; with a shared prefix, taken two to six at a time from clusters. The
    choices come from one block of uint32 draws (one C call, not one per word)."""
    clusters = list(CLUSTERS[shared_prefix]) if shared_prefix else [list(VOCABULARY)]
    # At most count // 2 + 1 clusters are visited (each gives two words or more), each costing two
    # draws plus one per word taken: 3 * count + 4 draws always suffice.
    draws = iter(uint32_draws(rng, 3 * count + 4).tolist())
    chosen: list[str] = []
    for i in range(len(clusters)):  # a lazy Fisher-Yates pass: only the clusters used get drawn
        j = i + next(draws) % (len(clusters) - i)
        clusters[i], clusters[j] = clusters[j], clusters[i]
        cluster = list(clusters[i])
        take = min(len(cluster), count - len(chosen), 2 + next(draws) % 5 if shared_prefix else count)
        for k in range(take):  # and a partial one inside the cluster
            m = k + next(draws) % (len(cluster) - k)
            cluster[k], cluster[m] = cluster[m], cluster[k]
        chosen += cluster[:take]
        if len(chosen) == count:
            return chosen
    taken = set(chosen)
    return chosen + rng.sample([w for c in clusters for w in c if w not in taken], count - len(chosen))


def render(words: list[str], fmt: str) -> str:
    if fmt == "comma":
        return ", ".join(words)
    if fmt == "lines":
        return "\n".join(words)
    if fmt == "json":
        return json.dumps(words)
    return "\n".join(f"{i}. {word}" for i, word in enumerate(words, 1))


class Sort(Task):
    name = "sort"
    version = "1"
    description = "Sort words alphabetically ignoring case and output them in a stated list format."
    Params = SortParams
    answer_instruction = (
        "End your response with a final line of the form `ANSWER: <the sorted words in the requested format>`; "
        "a format with one word per line continues on the lines below `ANSWER:`."
    )
    parser = ListParser(value_pattern=INLINE_LIST, normalize=_normalize_words)

    def _generate(self, params: SortParams, rng: random.Random) -> Item:
        distinct = _distinct_words(params.words - params.duplicates, params.shared_prefix, rng)
        words = distinct + [rng.choice(distinct) for _ in range(params.duplicates)]
        n, mutated = len(words), round(params.case_mutation * len(words))
        # One block of uint32 draws for the per-word choices: which words change case, how, the order.
        draws = uint32_draws(rng, 2 * mutated + n).tolist()
        positions = list(range(n))
        for k in range(mutated):  # partial Fisher-Yates: a random set of `mutated` words
            j = k + draws[k] % (n - k)
            positions[k], positions[j] = positions[j], positions[k]
            words[positions[k]] = _mutate_case(words[positions[k]], draws[mutated + k])
        for i in range(n - 1, 0, -1):  # Fisher-Yates: the order shown
            j = draws[2 * mutated + i] % (i + 1)
            words[i], words[j] = words[j], words[i]
        ordered = sorted(words, key=str.lower)
        lowered = [w.lower() for w in ordered]
        shared = [_common_prefix(a, b) for a, b in itertools.pairwise(lowered)]
        question = (
            "Sort the following words alphabetically, ignoring case (treat upper- and lowercase letters as "
            "equal). Keep every word, including repeats, and write each word as it is spelled below.\n"
            f"Give the sorted list {FORMAT_TEXT[params.format]}.\n\nWords: {' '.join(words)}"
        )
        return Item(
            question=question,
            answer=render(ordered, params.format),
            guess_chance=0.0,
            metadata={
                "words": words,
                "format": params.format,
                "case_mutated": mutated,
                "duplicates": len(words) - len(set(lowered)),
                "mean_shared_prefix": round(sum(shared) / len(shared), 3),
            },
        )
