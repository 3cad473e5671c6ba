"""Answer extraction from real model output, by a documented cascade of rules.

Models answer with chain-of-thought full of intermediate values, markdown, LaTeX and trailing prose.
Each rule is tried in order and the first that yields a value wins; the rule's name is recorded with
the parsed answer so lenient matches can be audited (and excluded) later.

1. `boxed`          the last LaTeX \\boxed{...}
2. `answer_line`    the last "ANSWER: ..." line (the format every prompt instructs)
3. `answer_phrase`  the last "final answer is ...", "the answer is ...", "result is ..."
4. `last_line`      the last non-empty line, when it consists of a single value
5. `last_value`     the last value anywhere in the text (lenient)

`AnswerParser` runs the cascade over one regex for a value. Its parts are public for parsers that
need more (the sort task reads whole lists): `marked_answers` (rules 1-3, in order) and `clean`. The
value syntaxes several tasks share live here too: integers (`INTEGER_PARSER`, `COUNT_PARSER`,
`normalize_integer`) and one-of-these-names answers (`names_parser`, `normalize_text`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

RULES = ("boxed", "answer_line", "answer_phrase", "last_line", "last_value")
STRICT_RULES = ("boxed", "answer_line")
"""The rules that read an answer given in the form every prompt requests (an `ANSWER:` line or a
\\boxed{}); an answer found only by the later rules counts for flexible accuracy, not for strict."""

# An "ANSWER: ..." line (also "**Final answer:** ...", "answer = ..."); group 1 is the rest of the line.
_ANSWER_LINE = re.compile(r"(?im)^[^\S\n]*[#>*_\s]*(?:final\s+)?answer[*_\s]*[:：=][*_\s]*(.*)$")
# A phrase such as "the final answer is ..." or "result = ..."; group 1 is the rest of the line.
_ANSWER_PHRASE = re.compile(
    r"(?i)\b(?:final answer|the answer|answer|result|solution)\s*(?:is|would be|will be|=|:)\s*(.*)$",
    re.MULTILINE,
)
_DECORATION = re.compile(r"[*_`$\\]|\\text\{|\\mathrm\{")

INTEGER_PATTERN = r"(?<![\w.])[-\u2212]?\d{1,3}(?:,\d{3})+(?![\w.])|(?<![\w.])[-\u2212]?\d+(?![\w])"
"""A signed integer, optionally with thousands separators ("-1,024", "\u22127", "42")."""
COUNT_PATTERN = r"(?<![\w.])\d{1,3}(?:,\d{3})+(?!\w)|(?<![\w.])\d+(?!\w)"
"""A non-negative integer, optionally with thousands separators ("1,024", "42")."""


def normalize_integer(value: str) -> str:
    """The canonical form of an integer answer: thousands separators and spaces dropped, the Unicode
    minus read as "-", leading zeros and a "+" sign dropped ("1,024" -> "1024", "\u22127" -> "-7")."""
    return str(int(value.replace(",", "").replace(" ", "").replace("\u2212", "-")))


def normalize_text(value: str) -> str:
    """The canonical form of a written answer: lowercase, runs of white space folded to one space."""
    return " ".join(value.lower().split())


@dataclass(frozen=True)
class Parsed:
    value: str | None  # normalised answer, None when nothing parsable was found
    rule: str | None  # which rule of the cascade matched


def _boxed_contents(text: str) -> list[tuple[int, str]]:
    """(offset, contents) of every \\boxed{...} in `text`, in order, with nested braces balanced."""
    found = []
    for match in re.finditer(r"\\boxed\s*\{", text):
        depth, start = 1, match.end()
        for pos in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            if depth == 0:
                found.append((start, text[start:pos]))
                break
    return found


def marked_answers(text: str) -> Iterator[tuple[str, str, int]]:
    """The fragments that rules 1-3 of the cascade read, in the order they are tried: (rule, fragment,
    offset of the fragment in `text`). Every \\boxed{...} content, last first; then the rest of every
    "ANSWER: ..." line, last first; then the rest of every answer phrase, last first. Lazy: a parser
    stops at the first fragment that holds a value."""
    for start, content in reversed(_boxed_contents(text)):
        yield "boxed", content, start
    for regex, rule in ((_ANSWER_LINE, "answer_line"), (_ANSWER_PHRASE, "answer_phrase")):
        for match in reversed(list(regex.finditer(text))):
            yield rule, match.group(1), match.start(1)


def clean(fragment: str) -> str:
    """A fragment without markdown and LaTeX decoration (*, _, `, $, backslashes, \\text{, \\mathrm{)
    and without white space and braces at its ends."""
    fragment = fragment.replace("\\text{", "").replace("\\mathrm{", "")
    return _DECORATION.sub("", fragment).strip().strip("{}").strip()


# ---- answer_braces: answers that may contain { and } themselves (closing brackets) ----
# Before the cascade runs, every brace that is part of the answer is swapped for a stand-in, so that
# \boxed{...} balancing and `clean` see only the braces of LaTeX commands; after cleaning, the stand-ins
# become braces again and the commands' braces left inside a fragment become line breaks (they end a
# value, as they did before the swap back).
_LEFT_STAND_IN, _RIGHT_STAND_IN = "\u2983", "\u2984"
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+\s*\{")
_RESTORE_BRACES = str.maketrans({"{": "\n", "}": "\n", _LEFT_STAND_IN: "{", _RIGHT_STAND_IN: "}"})


def _protect_answer_braces(text: str) -> str:
    """Swap answer braces for stand-ins, keeping only the braces that delimit LaTeX commands.

    Escaped braces (\\{, \\}) are answer braces. Per line, each `\\command{` keeps its brace and is taken
    to close at the last `}` of the line (LaTeX answers such as \\boxed{)]}} leave the answer's own braces
    unescaped), so the final k closing braces of a line with k commands are delimiters and every other
    brace is answer content.
    """
    text = text.replace("\\{", _LEFT_STAND_IN).replace("\\}", _RIGHT_STAND_IN)
    lines = []
    for line in text.split("\n"):
        commands = list(_LATEX_COMMAND.finditer(line))
        kept = {match.end() - 1 for match in commands}
        if commands:
            closing = [pos for pos in range(commands[0].start(), len(line)) if line[pos] == "}"]
            kept.update(closing[-len(commands):])
        lines.append("".join(
            char if pos in kept or char not in "{}" else (_LEFT_STAND_IN if char == "{" else _RIGHT_STAND_IN)
            for pos, char in enumerate(line)
        ))
    return "\n".join(lines)


@dataclass(frozen=True)
class AnswerParser:
    """A cascade over one task's value syntax.

    value_pattern: a regex for one answer value (no anchors); normalize: maps a matched value to the
    canonical form the scorer compares. answer_braces: the answer itself may contain { and } (as the
    closing brackets of the brackets task do); braces are then read as answer content, except those
    that delimit LaTeX commands (\\boxed{...}, \\text{...}), and \\{ \\} count as answer braces.
    """

    value_pattern: str
    normalize: Callable[[str], str]
    flags: int = re.IGNORECASE
    answer_braces: bool = False

    def _clean(self, fragment: str) -> str:
        cleaned = clean(fragment)
        return cleaned.translate(_RESTORE_BRACES) if self.answer_braces else cleaned

    def _values(self, fragment: str) -> list[str]:
        return [m.group(0) for m in re.finditer(self.value_pattern, self._clean(fragment), self.flags)]

    def _first_value(self, fragment: str) -> str | None:
        values = self._values(fragment)
        return values[0] if values else None

    def parse(self, text: str | None) -> Parsed:
        if not text or not text.strip():
            return Parsed(None, None)
        if self.answer_braces:
            text = _protect_answer_braces(text)
        for rule, fragment, _ in marked_answers(text):
            if (value := self._first_value(fragment)) is not None:
                return Parsed(self.normalize(value), rule)
        lines = [line for line in text.strip().splitlines() if line.strip()]
        if lines:
            last = self._clean(lines[-1]).rstrip(".!?;:,")
            if re.fullmatch(self.value_pattern, last, self.flags):
                return Parsed(self.normalize(last), "last_line")
        values = self._values(text)
        if values:
            return Parsed(self.normalize(values[-1]), "last_value")
        return Parsed(None, None)


INTEGER_PARSER = AnswerParser(value_pattern=INTEGER_PATTERN, normalize=normalize_integer)
"""Signed integer answers (arithmetic, sequence, numeric table questions)."""
COUNT_PARSER = AnswerParser(value_pattern=COUNT_PATTERN, normalize=normalize_integer)
"""Non-negative integer answers (letter and object counts)."""


@lru_cache(maxsize=4096)
def names_parser(names: tuple[str, ...]) -> AnswerParser:
    """Answers that are one of `names` (items, table cells), in any case and spacing. Longer names are
    tried first, so a name that contains another is read whole; values compare by `normalize_text`."""
    alternatives = "|".join(" +".join(map(re.escape, name.split())) for name in sorted(names, key=len, reverse=True))
    return AnswerParser(value_pattern=rf"\b(?:{alternatives})\b", normalize=normalize_text)
