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

import bisect
import itertools
import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import (
    CODE_BLOCK,
    HEDGE,
    NOTHING,
    NOTHING_STATED,
    AnswerParser,
    Parsed,
    clean,
    inside,
    is_looping,
    marked_answers,
)
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
_WORD = re.compile(r"[A-Za-z](?:[A-Za-z'’&-]*[A-Za-z])?")
"""A word, apostrophes, ampersands and hyphens inside it included ("o'connell", "r&d")."""
_LIST_GAP = re.compile(
    r"(?:[^\S\n]|\n(?![^\S\n]*\n)|[,;|\"'`“”‘’\[\]*_]|\\\\|\band\b|(?<![^\s,\[])(?:[-•]|\d+[.)])(?=\s))*",
    re.IGNORECASE,
)
"""What may separate two items of a list: spaces, one line break, commas, quotes, brackets, markdown, "and",
a LaTeX line break, a bullet or an item number. Not a full stop, a colon or a blank line: they end it."""
_PROSE_WORDS = frozenset("""
the an is are was were be been which that this these those so in of to for or as it its they them we you he she
sorted sorting sort alphabetical alphabetically order ordered list words word answer final here here's note please
with by from at into then now also not no yes all each every only correct following above below result thus hence
therefore because since after before there their when where if but gives give get gets our my output ascending
""".split())
"""Words that end a list after an answer marker ("apple banana cherry, which are sorted"), unless the item
lists them itself."""
_PROSE_BEFORE_LIST = 12
"""Words of prose a list may follow after an answer marker ("ANSWER: the sorted words are ...")."""


def _normalize_words(value: str) -> str:
    """The canonical form scoring compares: lowercase words joined by commas (separators, quotes,
    brackets and list numbering dropped; 'and' between items read as a separator)."""
    return ",".join(word.lower() for word in _WORD.findall(re.sub(r"(?i)(?:,\s*|\s+)and\s+", ",", value)))


@dataclass(frozen=True)
class ListParser(AnswerParser):
    """AnswerParser whose value is a list of words, written in any list format (comma- or space-separated,
    one per line, JSON, numbered). Rules keep their names and order:

    - after an answer marker the list may follow a few words of prose ("the sorted words are") and continue
      on the lines below; every word that is not prose belongs to it, so a list with misspelt or invented
      words is read as written, and it ends at a full stop, a colon, a blank line or a prose word;
    - `last_line`: the last line, when it is a list of two words or more (after a heading such as
      "Sorted:"); a line headed "Words:" restates the question and is not an answer;
    - `last_value`: the last run of two or more of the item's own words (`vocabulary`, one unknown word
      inside allowed), on one line or one word per line; never prose ("Hence, we"), code, a loop or a
      restated "Words:" line.
    A run of one word after a marker is not a list, and two different lists joined by a hedge ("a b c or
    c b a") are ambiguous."""

    vocabulary: frozenset[str] | None = None

    def _known(self, word: str) -> bool:
        return self.vocabulary is None or word.lower() in self.vocabulary

    def _run(self, text: str, start: int, marked: bool, prose: int = 0) -> tuple[list[str], int]:
        """The run of list words from `start`, after up to `prose` prose words: its words and its end. A
        `marked` run (after an answer marker, or a list line) takes every word that is not prose; otherwise
        one unknown word is allowed between two of the item's words."""
        words: list[str] = []
        pending: str | None = None
        end = start
        for token in _WORD.finditer(text, start):
            word = token.group(0)
            is_prose = word.lower() in _PROSE_WORDS and not self._known(word)
            if words and word.lower() == "and" and not self._known(word):
                continue  # a separator ("c, d and e"), read by the gap test of the next word
            if words:
                if token.start() - end > 16 or not _LIST_GAP.fullmatch(text, end, token.start()):
                    break
                if self._known(word):
                    words += [pending, word] if pending else [word]
                    pending = None
                elif marked:
                    if is_prose:
                        break
                    words.append(word)
                elif pending is not None:
                    break
                else:
                    pending = word
                end = token.end()
            elif self._known(word) or (marked and not is_prose):
                if not _LIST_GAP.fullmatch(text, end, token.start()) and end != start:
                    break
                words, end = [word], token.end()
            elif prose == 0 or not is_prose or "\n\n" in text[end : token.start()]:
                break
            else:
                prose, end = prose - 1, token.end()
        return words, end

    def parse(self, text: str | None) -> Parsed:
        if not text or not text.strip():
            return NOTHING
        for rule, fragment, start in marked_answers(text):
            if NOTHING_STATED.match(clean(fragment)):
                return Parsed(None, rule)
            words, end = self._run(text, start, marked=True, prose=_PROSE_BEFORE_LIST)
            if len(words) >= 2:
                value = _normalize_words(",".join(words))
                other = self._run(text, joint.end(), marked=True)[0] if (joint := _LIST_HEDGE.match(text, end)) else []
                if len(other) >= 2 and (alternative := _normalize_words(",".join(other))) != value:  # "a b c or c b a"
                    return Parsed(None, rule, ambiguous=(value, alternative))
                return Parsed(value or None, rule)
        if is_looping(text):
            return NOTHING
        text = CODE_BLOCK.sub("\n", text)
        lines = [line for line in text.splitlines() if line.strip()]
        if lines and not _GIVEN_LINE.match(lines[-1]):  # a last line that restates the question's words
            line = lines[-1]
            heading = _HEADING.match(line)
            words, end = self._run(line, heading.end() if heading else 0, marked=True)
            if len(words) >= 2 and not _WORD.search(line, end):
                return Parsed(self.normalize(",".join(words)) or None, "last_line")
        last: tuple[list[str], int] = ([], 0)
        given = [line.span() for line in _GIVEN_LINE.finditer(text)]
        position = 0
        while (found := _WORD.search(text, position)) is not None:
            if inside(found.start(), given):
                position = given[bisect.bisect_right(given, (found.start() + 1, -1)) - 1][1]
                continue
            words, end = self._run(text, found.start(), marked=False)
            if len(words) >= 2 and _one_line_or_one_per_line(text[found.start() : end]):
                last = (words, end)
            position = max(end, found.end())
        words, end = last
        if not words:
            return NOTHING
        return Parsed(self.normalize(",".join(words)) or None, "last_value")


def _one_line_or_one_per_line(segment: str) -> bool:
    """A list written on one line, or one word per line (not lines of several words each: prose)."""
    lines = segment.splitlines()
    return len(lines) == 1 or all(len(_WORD.findall(line)) <= 1 for line in lines)


_LIST_HEDGE = re.compile(rf"[^\S\n]*\(?(?:{HEDGE.pattern})", re.IGNORECASE)
"""What joins two lists into a hedge: "apple banana or banana apple", "(or ...)", " / "."""
_HEADING = re.compile(r"[^\S\n]*[A-Za-z][\w ]{0,24}:[^\S\n]*")
_GIVEN_LINE = re.compile(r"(?im)^[^\S\n]*[*_#]*words[*_]*:.*$")
"""The question's "Words: ..." line, which a model may repeat: not its answer."""


@lru_cache(maxsize=4096)
def _list_parser(vocabulary: frozenset[str] | None) -> ListParser:
    return ListParser(value_pattern=_WORD.pattern, normalize=_normalize_words, vocabulary=vocabulary)


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
    parser = _list_parser(None)

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        words = metadata.get("words")
        return _list_parser(frozenset(word.lower() for word in words) if words else None)

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
