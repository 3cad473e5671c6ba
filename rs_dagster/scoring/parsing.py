"""Answer extraction from real model output: one cascade over each task's answer grammar.

Models answer with chain-of-thought full of intermediate values, markdown, LaTeX, hedges and trailing
prose. The cascade finds the fragments where a model states its answer and reads each with the task's
grammar; the first fragment that states something decides, and the rule's name is recorded with the
parsed answer so lenient matches can be audited (and excluded) later.

1. `boxed`          the last LaTeX \\boxed{...}
2. `answer_line`    the last "ANSWER: ..." line (the format every prompt instructs)
3. `answer_phrase`  the last "final answer is ...", "the answer is ...", "result is ...", "the sorted
                    list is ...", "the expression evaluates to ...", "the closest match would be ...",
                    "(A) ... is the best option" (the last one of its line; not inside code)
4. `last_line`      the last non-empty line (code fences aside), when it consists of a single value
5. `last_value`     the value that concludes the text ("..., which evaluates to 27."; not a value inside
                    code, an operand, a numbered step or the question's given), or on option tasks the
                    last option letter named (lenient); nothing in a repetition loop

A marker that ends its line ("The final answer is:") is read on the next line that holds anything.

A fragment is read the way a careful grader reads it (`AnswerGrammar.read`):

- its answer is the first candidate value in it; prose after the answer ("42, since 6 x 7 = 42") is
  not read, so an explanation never makes an answer ambiguous;
- a hedge is not an answer: candidates joined by "or", "/", ",", "and", "|", ";" ("5 or 7",
  "(A) or (B)", "A, B, C, D", "True/False") that name two or more different values make the fragment
  `ambiguous`, which is never credited. On option tasks an option letter next to an option's content
  ("(B) square") is one answer when both name the same option and ambiguous when they disagree;
- a retraction counts as what it retracts to: after "wait", "actually", "correction", "I mean",
  "scratch that" or "no, it's", the fragment is read again from there ("5. Wait, no, it's 7" is 7);
- what is not an answer stops the cascade with nothing read (the sample is `unparsed`), rather than
  falling back to a value picked out of the reasoning: a negated value ("not True"), an unevaluated
  expression ("12 - 5"; "12 - 5 = 7" reads 7), a value the grammar rejects (a fraction for an integer
  task), or a statement that there is no answer ("the answer is empty", "none").

Reading never raises and runs in time linear in the text (every scan is one pass of a regex or of the
characters; no step re-reads the text once per line or per candidate). Values are normalised as
strings, never converted to int, so a number of any length is read.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

RULES = ("boxed", "answer_line", "answer_phrase", "last_line", "last_value")
STRICT_RULES = ("boxed", "answer_line")
"""The rules that read an answer given in the form every prompt requests (an `ANSWER:` line or a
\\boxed{}); an answer found only by the later rules counts for flexible accuracy, not for strict."""

# An "ANSWER: ..." line (also "**Final answer:** ...", "answer = ..."); group 1 is the rest of the line.
_ANSWER_LINE = re.compile(r"(?im)^[^\S\n]*[#>*_\s]*(?:final\s+)?answer[*_\s]*[:：=](?:[*_]|[^\S\n])*(.*)$")
_CHOSEN = r"(?:correct|best|right|closest|only|most similar|final)"
_CHOICE = r"(?:option|choice|match|fit)"
"""The words of a phrase that picks an option: "the closest match", "the best option"."""
# A phrase such as "the final answer is ..." or "result = ..."; group 1 is the rest of the line.
_PHRASE = (
    r"(?:(?:"
    # "the (final) answer / result / solution", but not where it is still sought ("to find the final answer: ...")
    r"(?<!find )(?<!get )(?<!determine )(?<!calculate )(?<!compute )(?<!reach )(?<!final )(?<!the )"
    r"\b(?:the )?(?:final )?(?:answer|result|solution)"
    r"|\b(?:final |sorted )+(?:list|order|sequence)"
    rf"|\b{_CHOSEN} {_CHOICE}(?: [^\n.]{{0,60}}?)?"
    r")[^\S\n]*(?:is|would be|will be|should be|=|:)|\b(?:evaluates|simplifies|reduces) to)(?:[^\S\n]*:)?[^\S\n]*"
)
_ANSWER_PHRASE = re.compile(rf"(?im)^.*{_PHRASE}(.*)$")
"""The last answer phrase of a line ("So the answer is (D). However, the closest match would be (A) ...")."""
_PHRASE_HINT = re.compile(r"(?i)answer|result|solution|list|order|sequence|option|choice|match|fit|evaluates|simplifies|reduces")
"""A word every answer phrase holds: the lines without one are never matched against the phrases."""
_PHRASE_IN_FRAGMENT = re.compile(rf"(?i).*{_PHRASE}")
_OPTION_FIRST = re.compile(
    r"(?im)^.*?(\([A-Za-z]\)[^\n.]{0,80}?)[^\S\n]+(?:is|would be|seems to be)[^\S\n]+(?:the[^\S\n]+)?"
    rf"{_CHOSEN}[^\S\n]+(?:answer|{_CHOICE})\b"
)
"""An option named before the phrase that chooses it: "(A) LA Confidential is the closest match"."""
# The first line that is not blank, a code fence or a display-math delimiter ($$, \[), after a marker whose own line ends ("The answer is:").
_NEXT_LINE = re.compile(r"\n(?:[^\S\n]*(?:```\w*|\$\$|\\\[|\\\])?[^\S\n]*\n)*[^\S\n]*(\S.*)")
_DECORATION = re.compile(r"[_`$\\]|\\text\{|\\mathrm\{")
_ASTERISKS = re.compile(r"(?<=[\d)])\*{1,2}(?=[\d(])|(?<= )\*{1,2}(?= )|(\*+)")
"""Asterisks: a product ("2 * 3", "2*3", "2**3") is kept, markdown emphasis ("**42**") is dropped."""

HEDGE = re.compile(
    r"[^\S\n]*(?:,[^\S\n]*(?:(?:or|and)\b)?|/|\||;|&|\bor\b|\band\b|\bbut also\b|\bvs\b\.?|\bversus\b|(?<=[^\S\n]))[^\S\n]*"
    r"(?:(?:maybe|perhaps|possibly|probably|also)\b[^\S\n]*)?[\"'“‘]?",
    re.IGNORECASE,
)
"""What joins the candidates of a hedge: "5 or 7", "A, B, C, and D", "True/False", "(A) | (B)", "not only
true but also false", or only spaces ("5 7", "False True False")."""
_PAIR_GAP = re.compile(r"[\s:.\-–—=()\[\]\"'“”*]{0,6}")
"""What may stand between an option's letter and its content ("(B) square", "B: square", "square (B)")."""
_RETRACTION = re.compile(
    r"(?i)\b(?:wait|actually|correction|scratch that|i mean|on second thought|no,?[^\S\n]*(?:it'?s|it is|the answer is))\b"
)
NOTHING_STATED = re.compile(
    r"(?i)^[\s\"'(\[:]*(?:(?:none|empty|nothing|no answer|no solution|unknown|undefined|undetermined|n/?a|"
    r"no (?:additional|more|further|other|closing)|not (?:possible|determinable|enough|needed)|cannot be determined|"
    r"impossible)\b|<[a-z][^<>\n]*>)"
)
"""A statement that there is no answer, or the prompt's placeholder echoed ("ANSWER: <closing brackets>")."""
_NEGATION = re.compile(r"(?i)(?:\bnot|¬|!|~)[\s(\[]*$")


def normalize_number(value: str) -> str | None:
    """The canonical form of a number, as a string (never int(), so any length is read): thousands
    separators and spaces dropped, the Unicode minus read as "-", a "+" sign, leading zeros and
    trailing decimal zeros dropped ("1,024" -> "1024", "\u22127" -> "-7", "12.50" -> "12.5",
    "5.0" -> "5"). None for a fraction, which is not an integer answer."""
    text = value.replace(",", "").replace(" ", "").replace("\u2212", "-")
    if "/" in text:
        return None
    sign = "-" if text.startswith("-") else ""
    whole, _, decimals = text.lstrip("+-").partition(".")
    digits = (whole.lstrip("0") or "0") + ("." + decimals.rstrip("0") if decimals.rstrip("0") else "")
    return digits if digits == "0" else sign + digits


def normalize_text(value: str) -> str:
    """The canonical form of a written answer: lowercase, runs of white space folded to one space."""
    return " ".join(value.lower().split())


@dataclass(frozen=True)
class Parsed:
    value: str | None  # normalised answer, None when nothing parsable was found (or the answer was ambiguous)
    rule: str | None  # which rule of the cascade decided
    ambiguous: tuple[str, ...] = ()  # the different candidates of a hedged answer (value is then None)
    in_form: bool = True  # written in the form the prompt asks for (strict accuracy counts only these)

    @property
    def is_ambiguous(self) -> bool:
        return bool(self.ambiguous)


NOTHING = Parsed(None, None)


_BRACE = re.compile(r"[{}]")


def _boxed_contents(text: str) -> list[tuple[int, str]]:
    """(offset, contents) of every \\boxed{...} in `text`, in order, with nested braces balanced: one
    pass pairs every brace, so an unclosed box costs nothing extra."""
    opens = [match.end() for match in re.finditer(r"\\boxed\s*\{", text)]
    if not opens:
        return []
    closing: dict[int, int] = {}
    stack: list[int] = []
    for match in _BRACE.finditer(text, opens[0] - 1):
        if match.group() == "{":
            stack.append(match.end())
        elif stack:
            closing[stack.pop()] = match.start()
    return [(start, text[start:closing[start]]) for start in opens if start in closing]


def marked_answers(text: str) -> Iterator[tuple[str, str, int]]:
    """The fragments that rules 1-3 of the cascade read, in the order they are tried: (rule, fragment,
    offset of the fragment in `text`). Every \\boxed{...} content, last first; then the rest of every
    "ANSWER: ..." line, last first; then the rest of every answer phrase, last first (a marker that ends
    its line, "The answer is:", gives the next line that holds anything). Lazy: a parser
    stops at the first fragment that states something."""
    for start, content in reversed(_boxed_contents(text)):
        yield "boxed", content, start
    for rule, find in (("answer_line", lambda: list(_ANSWER_LINE.finditer(text))), ("answer_phrase", lambda: _phrases(text))):
        for match in reversed(find()):
            if match.group(1).strip(" *_`$:") or not (below := _NEXT_LINE.match(text, match.end())):
                yield rule, match.group(1), match.start(1)
            else:  # the marker ends its line: the answer is on the next line that holds anything, read
                # from its last answer phrase if it has one ("Answer:\nThe best is (D) An. ... the closest
                # match would be (D) ...")
                phrase = _PHRASE_IN_FRAGMENT.match(below.group(1))
                skip = phrase.end() if phrase and phrase.end() < len(below.group(1)) else 0
                yield rule, below.group(1)[skip:], below.start(1) + skip


def _phrases(text: str) -> list[re.Match[str]]:
    """The answer phrases of `text` in order, outside code blocks; only the lines that hold one of the
    phrases' words are matched in full (one cheap pass finds them)."""
    if not _PHRASE_HINT.search(text):
        return []
    code = [(block.start(), block.end()) for block in CODE_BLOCK.finditer(text)] if "```" in text else []
    found = []
    line_start = -1
    for hint in _PHRASE_HINT.finditer(text):
        if hint.start() < line_start:
            continue  # this line was matched already
        line_start = text.rfind("\n", 0, hint.start()) + 1
        line_end = text.find("\n", hint.start())
        line_end = len(text) if line_end < 0 else line_end
        for regex in (_ANSWER_PHRASE, _OPTION_FIRST):
            if (match := regex.match(text, line_start, line_end)) and not inside(match.start(1), code):
                found.append(match)
        line_start = line_end
    return sorted(found, key=lambda m: m.start(1))


def inside(position: int, spans: list[tuple[int, int]]) -> bool:
    """Whether `position` falls in one of the sorted, disjoint `spans`."""
    index = bisect.bisect_right(spans, (position + 1, -1)) - 1
    return index >= 0 and spans[index][0] <= position < spans[index][1]


def clean(fragment: str) -> str:
    """A fragment without markdown and LaTeX decoration (emphasis *, _, `, $, backslashes, \\text{, \\mathrm{)
    and without white space and braces at its ends."""
    fragment = fragment.replace("\\text{", "").replace("\\mathrm{", "")
    fragment = _ASTERISKS.sub(lambda match: "" if match.group(1) else match.group(0), fragment)
    return _DECORATION.sub("", fragment).strip().strip("{}").strip()


def is_looping(text: str) -> bool:
    """A repetition loop: the last line, or the last 40 characters, occur three times or more. The lenient
    rules read nothing from a loop (its last value is where the token limit cut it, not an answer)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and Counter(lines)[lines[-1]] >= 3:
        return True
    tail = text.rstrip()[-40:]
    return len(tail) == 40 and text.count(tail) >= 3


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
    """The answer grammar of one task (or one item's answer form), and the cascade over it.

    value_pattern: a regex for one candidate value (no anchors); normalize: maps a candidate to the
    canonical form the scorer compares, or None for a candidate that is not an answer (a fraction for an
    integer task). operators: a regex for what makes a candidate the start of an expression ("12 - 5",
    "True AND False"); such a fragment is read after its "=", or not at all. option_pairs: candidates are
    option letters and option contents, and a letter next to a content is one answer (see the module).
    in_form: whether a matched candidate is written in the form the prompt asks for (the dates task reads
    any unambiguous written date, but only the asked format counts for strict accuracy). answer_braces: the
    answer itself may contain { and } (as the closing brackets of the brackets task do); braces are then
    read as answer content, except those that delimit LaTeX commands, and \\{ \\} count as answer braces.
    restated: question text a model may repeat before its answer (the brackets task's prefix: "( [ ] )"
    for the prefix "( [" answers "] )"); a fragment that begins with it is read after it.
    lenient: what the `last_value` rule reads when no answer is marked: "conclusion", the value that ends
    the text (see `_conclusion`); "last_mention", the last candidate anywhere (option tasks, where models
    end with a sentence about the option they chose); "none", nothing (brackets: a line of brackets at the
    end restates the sequence). given: a regex for the words that introduce a value the question itself
    gives ("Today is"): such a value ending the text restates the question, it does not answer it.
    prose_pattern: the candidate regex for the rules that read prose (answer_phrase, last_line, last_value)
    where it must be stricter than in an answer line (the boolean notations' words "on", "no").
    free_text: a short answer line or box that names no candidate is read as written (an item the story
    never mentions is a wrong answer, not a missing one). openers: for closing-bracket answers, the opening
    brackets: a fragment whose first bracket opens ("`[]`", "( ) [ ( )") writes a sequence, not closers.
    """

    value_pattern: str
    normalize: Callable[[str], str | None]
    flags: int = re.IGNORECASE
    operators: str | None = None
    option_pairs: bool = False
    in_form: Callable[[str], bool] | None = None
    answer_braces: bool = False
    restated: str | None = None
    lenient: str = "conclusion"
    given: str | None = None
    prose_pattern: str | None = None
    free_text: bool = False
    openers: str | None = None
    _compiled: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def _regex(self, name: str) -> re.Pattern[str]:
        """Compiled once per parser: the candidate regex, and the expression test after a candidate."""
        if name not in self._compiled:
            self._compiled[name] = (
                re.compile(self.value_pattern, self.flags) if name == "value"
                else re.compile(self.prose_pattern or self.value_pattern, self.flags) if name == "prose"
                else re.compile(rf"[)\]]*[^\S\n]*(?:{self.operators})[^\S\n]*[(\[]*[^\S\n]*(?:{self.value_pattern})", self.flags)
            )
        return self._compiled[name]

    def _clean(self, fragment: str) -> str:
        cleaned = clean(fragment)
        return cleaned.translate(_RESTORE_BRACES) if self.answer_braces else cleaned

    def read(self, fragment: str, rule: str) -> Parsed | None:
        """What one fragment states: a value, an ambiguous answer, a statement with no answer in it
        (Parsed with value None: the cascade stops there), or None when it holds no candidate at all."""
        text = self._clean(fragment)
        if NOTHING_STATED.match(text) or text.count("|") >= 3:  # no answer, or a table row
            return Parsed(None, rule)
        skip = self._after_restated(text)
        if self.openers and (bracket := _BRACKET.search(text, skip)) and bracket.group(0) in self.openers:
            return Parsed(None, rule)
        candidates = list(self._regex("value" if rule in STRICT_RULES else "prose").finditer(text, skip))
        if not candidates:
            written = text.rstrip(".!")
            short = rule in STRICT_RULES or (len(written.split()) <= 3 and not _PROSE_WORD.search(written))
            if self.free_text and short and 0 < len(written) <= 40 and not _NOT_FREE_TEXT.search(written):
                return Parsed(self.normalize(written), rule)  # "ANSWER: left winger", an answer outside the item's names
            return None
        first = 0
        retraction = None
        for cue in _RETRACTION.finditer(text, candidates[0].end()):
            if cue.end() <= candidates[-1].start():
                retraction = cue
        if retraction is not None:
            first = next(i for i, c in enumerate(candidates) if c.start() >= retraction.end())
        start = retraction.end() if retraction is not None else 0
        return self._read_from(text, candidates, first, start, rule)

    def _after_restated(self, text: str) -> int:
        """Where `text` continues after a repetition of `restated` at its start (white space aside), or 0."""
        if not self.restated:
            return 0
        position = matched = 0
        while matched < len(self.restated) and position < len(text):
            if not text[position].isspace():
                if text[position] != self.restated[matched]:
                    return 0
                matched += 1
            position += 1
        return position if matched == len(self.restated) else 0

    def _read_from(self, text: str, candidates: list[re.Match[str]], first: int, start: int, rule: str) -> Parsed:
        while True:  # an expression is read from its "=" on: each turn moves past one "="
            head = candidates[first]
            if _NEGATION.search(text, max(start, head.start() - 8), head.start()):
                return Parsed(None, rule)
            if self.operators is None or not self._regex("operators").match(text, head.end()):
                break
            line_end = text.find("\n", head.end())
            result = _EQUALS.search(text, head.end(), len(text) if line_end < 0 else line_end)
            equals = result.end() - 1 if result else -1
            later = next((i for i in range(first + 1, len(candidates)) if candidates[i].start() > equals), None) if result else None
            if later is None:
                return Parsed(None, rule)
            first, start = later, equals + 1
        values = [self.normalize(head.group(0))]
        if values[0] is None:
            return Parsed(None, rule)
        end = head.end()
        for following in candidates[first + 1 :]:
            if not self._joined(text[end : following.start()]):
                break
            values.append(self.normalize(following.group(0)) or following.group(0))
            end = following.end()
        distinct = tuple(dict.fromkeys(v for v in values if v is not None))
        if len(distinct) > 1:
            return Parsed(None, rule, ambiguous=distinct)
        return Parsed(distinct[0], rule, in_form=self.in_form(head.group(0)) if self.in_form else True)

    def parse(self, text: str | None) -> Parsed:
        if not text or not text.strip():
            return NOTHING
        if self.answer_braces:
            text = _protect_answer_braces(text)
        for rule, fragment, start in marked_answers(text):
            if (reading := self.read(fragment, rule)) is not None:
                return reading
            if rule in STRICT_RULES and fragment.strip(" *_`$") and not text[start + len(fragment) :].strip(" *_`$\n}"):
                return Parsed(None, rule)  # the final ANSWER line holds no value of the task's form ("ANSWER: 10" for ON/OFF)
        if is_looping(text):
            return NOTHING
        lines = [line for line in text.strip().splitlines() if line.strip() and not _FENCE.fullmatch(line)]
        text = CODE_BLOCK.sub("\n", text)  # code is not a conclusion
        if lines:
            final = _ARTICLE.sub("", self._clean(lines[-1]).rstrip(".!?;:,"))  # "A triangle", "the 7"
            if self._regex("prose").fullmatch(final) and (reading := self.read(lines[-1], "last_line")) is not None:
                return reading
        if self.lenient == "none":
            return NOTHING
        text = self._clean(text)
        final_three: deque[re.Match[str]] = deque(maxlen=3)
        last_letter: re.Match[str] | None = None
        for match in self._regex("prose").finditer(text):
            final_three.append(match)
            if self.option_pairs and len(match.group(0).strip("() ")) == 1:
                last_letter = match
        if not final_three:
            return NOTHING
        concludes = self._concludes(text, final_three[-1]) and not (self.option_pairs and final_three[-1] is not last_letter)
        last_line = text.rstrip().rfind("\n") + 1
        if concludes and last_line <= final_three[-1].start() and _RECORDS.match(text, last_line):
            # "Cyd Silva, 158 | Dana Nakamura, 148": the last line offers several records
            listed = [self.normalize(m.group(0)) for m in self._regex("prose").finditer(text, last_line)]
            if len(set(listed)) > 1:
                return Parsed(None, "last_value", ambiguous=tuple(dict.fromkeys(v for v in listed if v)))
        if not concludes:
            if self.lenient == "conclusion" or last_letter is None:
                return NOTHING
            # an option task's last letter, anywhere ("(B) Kolya is the most similar ..."); its content may
            # follow. An option's content in prose is read only when it is the whole last line ("A triangle").
            following = [m for m in self._regex("prose").finditer(text, last_letter.start()) if m.start() < last_letter.end() + 200]
            if _DENIAL.search(text, last_letter.end()) or self._in_listing(text, last_letter):
                return NOTHING
            return self._read_from(text, following, 0, last_letter.start(), "last_value")
        chain = [final_three[-1]]  # the last candidate and those a hedge (or an option pair) joins to it
        for earlier in reversed(list(final_three)[:-1]):
            if not self._joined(text[earlier.end() : chain[0].start()]):
                break
            chain.insert(0, earlier)
        if len(chain) == 3:  # "The first terms are: 5, 7, 12, 13": an enumeration, not a conclusion
            return NOTHING
        if self.option_pairs and self._in_listing(text, chain[-1]):  # the options restated, none chosen
            return NOTHING
        if _DENIAL.search(text, chain[-1].end()):  # "... none of the options is a perfect fit."
            return NOTHING
        return self._read_from(text, chain, 0, 0, "last_value")

    def _joined(self, gap: str) -> bool:
        """Whether `gap` joins two candidates into one statement: a hedge, or an option's letter and content."""
        return len(gap) <= 24 and bool(HEDGE.fullmatch(gap) or (self.option_pairs and _PAIR_GAP.fullmatch(gap)))

    @staticmethod
    def _in_listing(text: str, value: re.Match[str]) -> bool:
        """Whether `value` stands in the last list of options of the text: two lines or more that begin with
        consecutive option letters ("A) King Kong ...\nB) Casino ..."), the model restating options."""
        block = None
        for listing in _OPTION_LISTING.finditer(text):
            block = listing
        if block is None or not block.start() <= value.start() < block.end():
            return False
        letters = re.findall(r"(?m)^[^\S\n]*\(?([A-Z])[).]", block.group(0))
        return all(ord(b) - ord(a) == 1 for a, b in itertools.pairwise(letters))

    def _concludes(self, text: str, value: re.Match[str]) -> bool:
        """Whether the text's last candidate is its conclusion: only punctuation follows it, or the words of a
        count's unit ("you have 8 kitchen utensils."); it is not an operand ("... XOR True)", "67 > 0"), an index
        ("a(3)"), the bound of a condition ("greater than 3") or in an aside ("(which is 8)."), not the result of a numbered step ("6. 26.5 -
        26.5 = 0") unless the step says it is final, and not a value the question gives ("Today is 2002-05-06.")."""
        line_start = text.rfind("\n", 0, value.start()) + 1
        before = text[max(line_start, value.start() - 200) : value.start()]
        return bool(
            (_CONCLUSION_END.fullmatch(text, value.end()) or (_COUNTED.search(before) and _UNIT_END.fullmatch(text, value.end())))
            and not (_STEP_LINE.match(text, line_start) and not _FINAL_STEP.search(text, line_start, value.start()))
            and not (self.operators and re.search(rf"(?:{self.operators})[\s(\[]*$", before, self.flags))
            and not _INDEX.search(before)
            and not _CONDITION.search(before)
            and before.count("(") <= before.count(")")  # not in an aside: "(which is 8)."
            and not (self.given and re.search(self.given, before))
        )


_FENCE = re.compile(r"\s*```\w*\s*")
CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_CONCLUSION_END = re.compile(r"[\s.!?;:,)\]\"'”’}]*")
_UNIT_END = re.compile(r"[^\S\n]+(?:[\"“]?[^\W\d_][\w'’-]*+[\"”]?[^\S\n]*+){1,8}[.!?]?[\s)\]\"'”’]*")
"""A few words closing the sentence after a count ("= 8 kitchen utensils.")."""
_COUNTED = re.compile(r"(?i)(?:=|\b(?:have|are|is|makes|gives|equals|total of|shows that))[^\S\n]*(?:(?:a|an|the)[^\S\n]+)?$")
"""What introduces a count that its unit may follow: "there are", "you have", "a total of", "="."""
_INDEX = re.compile(r"[A-Za-z]\($")
_CONDITION = re.compile(r"(?i)\b(?:than|multiple of|divisible by|at least|at most|up to)[^\S\n]*$")
"""A value that ends a condition, not a result: "... greater than 3.", "a multiple of 3."."""
_NOT_FREE_TEXT = re.compile(r"[|{}<>=\d]|\b(?:is|are|was|the answer)\b", re.IGNORECASE)
"""What a free-text answer line does not hold: digits (a number where a name is asked is not an answer of
the task's kind), markup, a sentence."""
_ARTICLE = re.compile(r"(?i)^(?:a|an|the)\s+")
_EQUALS = re.compile(r"(?i)=|\b(?:equals|is equal to|evaluates to|gives|makes|yields)\b")
"""What gives an expression's value: "12 - 5 = 7", "`5 * 4 * 7`, which equals 180"."""
_BRACKET = re.compile(r"[(\[<{)\]>}]")
_PROSE_WORD = re.compile(r"(?i)\b(?:that|this|we|it|to|of|a|an|the|not|no|so|which|in|on|for|with|be|by)\b")
"""Words that make an answer phrase's rest a sentence, not a name ("the result is that we ...")."""
_RECORDS = re.compile(r"[^\n]*\S[^\S\n]\|[^\S\n]\S")
"""A line of records separated by " | " (matched at the start of the last line)."""
_DENIAL = re.compile(r"(?i)\bnone of (?:the|them|these|those)\b|\bno (?:option|choice|answer)s? (?:is|are|fits?|matche?s?)\b")
"""After the last value, a statement that no option or answer fits: nothing was chosen."""
_OPTION_LISTING = re.compile(r"(?m)(?:^[^\S\n]*\(?[A-Z][).][^\S\n].*\n)+^[^\S\n]*\(?[A-Z][).][^\S\n].*$")
"""Two lines or more that each begin with an option letter: a listing."""
_STEP_LINE = re.compile(r"[^\S\n]*(?:\d+[.)]|[-•])[^\S\n]")
_FINAL_STEP = re.compile(r"(?i)\b(?:finally|final|in total|therefore|thus)\b")
"""What makes the last numbered step a conclusion ("3. Finally, ... in total: 4 + 12 + 7 = 28 animals.")."""


NUMBER_PATTERN = r"(?<![\w.,/\d])[-\u2212+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?![\w]|[.,/]\d)"
"""A number: an integer with optional sign (ASCII or Unicode minus) and thousands separators, a decimal,
or a fraction (read, then rejected by normalize_number) - "-1,024", "\u22127", "1,234.", "5.5", "3/4"."""
NUMBER_OPERATORS = r"[-+*/×÷^\u2212<>≤≥]|\*\*"

NUMBER_PARSER = AnswerParser(value_pattern=NUMBER_PATTERN, normalize=normalize_number, operators=NUMBER_OPERATORS)
"""Numeric answers (arithmetic, sequence, counts, numeric table questions): a count written -5 is -5, a
wrong answer, and 5.5 is 5.5, never a correct 5."""


@lru_cache(maxsize=4096)
def names_parser(names: tuple[str, ...], given: str | None = None) -> AnswerParser:
    """Answers that are one of `names` (items, table cells), in any case and spacing. Longer names are
    tried first, so a name that contains another is read whole; values compare by `normalize_text`.
    `given`: see AnswerParser (the words that introduce the question's own data)."""
    alternatives = "|".join(" +".join(map(re.escape, name.split())) for name in sorted(names, key=len, reverse=True))
    return AnswerParser(
        value_pattern=rf"(?<![\w'’])(?:{alternatives})(?![\w'’])", normalize=normalize_text, free_text=True, given=given
    )


@lru_cache(maxsize=4096)
def options_parser(letters: str, contents: tuple[str, ...]) -> AnswerParser:
    """Multiple choice: an option letter (any case in parentheses; a bare capital, where "A" and "I" must
    not begin a sentence such as "A square has") or an option's content, which reads as its letter. A
    letter next to a content is one answer when both name the same option and ambiguous otherwise."""
    by_content = {normalize_text(content): letters[i] for i, content in enumerate(contents)}
    plain = "".join(c for c in letters if c not in "AI")
    words = "".join(c for c in letters if c in "AI")
    bare = "|".join(filter(None, [f"[{plain}]" if plain else "", f"[{words}](?!\\s+[a-z])" if words else ""]))
    names = "|".join(" +".join(map(re.escape, c.split())) for c in sorted(contents, key=len, reverse=True))
    alone = rf"|(?<![\w'’.-])[{letters.lower()}](?=[).]?\s*$)"  # a lower-case letter that ends the fragment
    named = rf"(?i:(?<![\w'’])(?:{names})(?![\w'’]))|" if names else ""
    pattern = rf"{named}\((?i:[{letters}])\)|(?<![\w'’.-])(?:{bare})(?![\w'’-]){alone}"

    def normalize(value: str) -> str:
        value = normalize_text(value)
        return by_content.get(value, value.strip("() ").upper())

    return AnswerParser(value_pattern=pattern, normalize=normalize, flags=0, option_pairs=True, lenient="last_mention")
