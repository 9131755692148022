"""Conversation memory for the mentoring chat: token estimates, windows, summaries and facts.

This is a pure module: no Django, no I/O, no randomness.  Every function is deterministic so the
same conversation always produces the same prompt (which keeps replies reproducible and tests
stable).

The pieces and how they fit together:

* ``count_tokens`` / ``message_tokens`` / ``messages_tokens`` - a cheap token *estimate* used for
  every budget decision in this module.
* ``select_recent`` - the newest turns that fit a budget (the verbatim short-term memory).
* ``summarise`` / ``update_summary`` - an extractive rolling summary of older turns (the compressed
  mid-term memory).
* ``extract_facts`` / ``merge_facts`` - rule-based facts about the mentee (name, goal, field,
  level, years of experience, learning preference) that survive across sessions (long-term memory).
* ``build_context`` - assembles chat messages for a responder and guarantees the token budget.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, cast, get_args

Role = Literal["user", "assistant"]
FactKey = Literal["name", "goal", "field", "level", "experience_years", "preference"]

#: Fact keys in the order they are shown to the model (most identifying first).
FACT_KEYS: tuple[FactKey, ...] = get_args(FactKey)

#: Estimated per-message framing cost (role markers, separators) added by chat APIs.  OpenAI
#: documents 3-4 tokens per message; we use the upper value so budgets stay on the safe side.
MESSAGE_OVERHEAD_TOKENS = 4

# Labels used inside summaries; ``update_summary`` parses them back to recover who said what.
_SUMMARY_LABELS: dict[Role, str] = {"user": "Mentee", "assistant": "Mentor"}
_LABEL_TO_ROLE: dict[str, Role] = {label: role for role, label in _SUMMARY_LABELS.items()}


@dataclass(frozen=True, slots=True)
class TurnView:
    """One message of a conversation as seen by the memory layer.

    ``index`` is the position of the turn in its conversation (0-based, increasing); ``role`` is
    ``"user"`` (the mentee) or ``"assistant"`` (the mentor); ``text`` is the raw message.
    """

    index: int
    role: Role
    text: str

    def __post_init__(self) -> None:
        # Literal types are not enforced at runtime; a typo here would silently break extraction.
        if self.role not in ("user", "assistant"):
            raise ValueError(f"role must be 'user' or 'assistant', got {self.role!r}")


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact about the mentee.

    ``key`` is one of ``FACT_KEYS``; ``value`` is a short phrase in the user's own words (e.g.
    ``"become a data scientist"``, ``"UX designer"``, ``"3"``); ``source_turn`` is the index of the
    turn it came from (``None`` when entered by other means, e.g. a profile form); ``confidence``
    in [0, 1] reflects how unambiguous the matching rule is.
    """

    key: FactKey
    value: str
    source_turn: int | None = None
    confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.key not in FACT_KEYS:
            raise ValueError(f"unknown fact key {self.key!r}; expected one of {FACT_KEYS}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within [0, 1], got {self.confidence}")


class Context(NamedTuple):
    """Result of ``build_context``: chat messages plus their estimated token count."""

    messages: list[dict[str, str]]
    tokens: int


class ContextBudgetError(ValueError):
    """The system prompt and the new user message alone do not fit the budget."""


# --------------------------------------------------------------------------------------------
# Token estimate
# --------------------------------------------------------------------------------------------

# ASCII letter runs, digit runs, or any other single non-space character.
_TOKEN_PIECE_RE = re.compile(r"[A-Za-z]+|[0-9]+|\S")
_LETTERS_PER_TOKEN = 8
_DIGITS_PER_TOKEN = 3


def count_tokens(text: str) -> int:
    """Estimate how many tokens ``text`` costs a typical BPE chat model.

    Rule (cheap, deterministic, language-agnostic):

    * every run of ASCII letters costs ``ceil(len / 8)`` tokens (most English words are one token,
      long ones two or three);
    * every run of digits costs ``ceil(len / 3)`` (BPE vocabularies chunk numbers by ~3 digits);
    * every other non-whitespace character costs one token - punctuation, symbols, and each
      Hangul syllable / CJK character / accented letter (modern tokenizers spend roughly one token
      per Hangul syllable);
    * whitespace is free.

    Because whitespace is free, ``count_tokens(a + " " + b) == count_tokens(a) + count_tokens(b)``,
    which is what lets the budget logic below reason about pieces independently.  It is an
    estimate, not the model's tokenizer: keep some headroom below a model's hard context limit.
    """
    total = 0
    for match in _TOKEN_PIECE_RE.finditer(text):
        piece = match.group()
        if piece[0].isascii() and piece[0].isalpha():
            total += math.ceil(len(piece) / _LETTERS_PER_TOKEN)
        elif piece[0].isascii() and piece[0].isdigit():
            total += math.ceil(len(piece) / _DIGITS_PER_TOKEN)
        else:
            total += 1
    return total


def message_tokens(content: str) -> int:
    """Estimated cost of one chat message with this content (content + framing overhead)."""
    return count_tokens(content) + MESSAGE_OVERHEAD_TOKENS


def messages_tokens(messages: Iterable[Mapping[str, str]]) -> int:
    """Estimated cost of a list of ``{"role", "content"}`` chat messages."""
    return sum(message_tokens(m.get("content", "")) for m in messages)


# --------------------------------------------------------------------------------------------
# Recent window
# --------------------------------------------------------------------------------------------


def select_recent(turns: Sequence[TurnView], budget_tokens: int) -> list[TurnView]:
    """Return the longest run of most recent turns whose cost fits ``budget_tokens``.

    ``turns`` must be in chronological order; the result keeps that order.  A turn costs
    ``message_tokens(turn.text)`` because that is what it will cost once sent as a chat message,
    so ``sum(message_tokens(t.text) for t in result) <= budget_tokens`` always holds.  The window
    is contiguous: we stop at the first turn that does not fit rather than skipping it, because a
    conversation with holes in the middle misleads the model more than a shorter one.
    """
    picked: list[TurnView] = []
    used = 0
    for turn in reversed(turns):
        cost = message_tokens(turn.text)
        if used + cost > budget_tokens:
            break
        picked.append(turn)
        used += cost
    picked.reverse()
    return picked


# --------------------------------------------------------------------------------------------
# Extractive summary
# --------------------------------------------------------------------------------------------

_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_TERM_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[가-힣]+")
# Kept as one text block for readability; split once at import time.
_STOPWORD_TEXT = """
    a about above after again all also am an and any are aren't as at be because been before
    being below between both but by can can't could did didn't do does doesn't doing don't down
    during each few for from further get got had has have having he her here hers herself him
    himself his how i i'd i'll i'm i've if in into is isn't it it's its itself just let's like
    me more most much my myself no nor not now of off on once only or other our ours ourselves
    out over own really same she should so some such than that that's the their theirs them
    themselves then there there's these they this those through to too under until up us very
    was we were what what's when where which while who whom why will with would you you'd
    you'll you're you've your yours yourself yourselves yes ok okay thanks thank hi hello hey
    please sure great good well maybe one thing things lot
    저는 저도 제가 그리고 그런데 그래서 하지만 정말 너무 그냥 좀 이 그 저 것 수 등
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Korean attaches particles and copulas to words; strip the common ones so "데이터를" and
# "데이터는" count as the same term.  Longest first so "에서" wins over "서".
_KO_SUFFIXES = (
    "입니다", "이에요", "예요", "에요", "합니다", "해요", "에서", "으로", "에게", "까지", "부터",
    "은", "는", "이", "가", "을", "를", "에", "로", "와", "과", "도", "의", "만",
)  # fmt: skip
_FACT_SENTENCE_BONUS = 1.0
_USER_SENTENCE_WEIGHT = 1.25


def _terms(text: str) -> list[str]:
    """Lower-cased content words (stopwords removed, Korean particles stripped)."""
    terms: list[str] = []
    for word in _TERM_RE.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        if "가" <= word[0] <= "힣":
            for suffix in _KO_SUFFIXES:
                if word.endswith(suffix) and len(word) > len(suffix):
                    word = word[: -len(suffix)]
                    break
        elif len(word) < 2:
            continue
        terms.append(word)
    return terms


@dataclass(frozen=True, slots=True)
class _Sentence:
    position: int
    role: Role
    text: str


def _split_sentences(items: Iterable[tuple[Role, str]]) -> list[_Sentence]:
    """Split texts into unique, non-empty sentences, numbered in reading order."""
    sentences: list[_Sentence] = []
    seen: set[str] = set()
    for role, text in items:
        for raw in _SENTENCE_SPLIT_RE.split(text):
            sentence = " ".join(raw.split())
            key = sentence.lower()
            if not sentence or key in seen:
                continue
            seen.add(key)
            sentences.append(_Sentence(len(sentences), role, sentence))
    return sentences


def _score(sentences: Sequence[_Sentence]) -> dict[int, float]:
    """Score sentences by how central their vocabulary is to the whole text.

    Score = sum of normalised term frequencies of the sentence's distinct terms divided by the
    square root of their number (so long sentences do not win by length alone), times a weight
    for mentee sentences (they state needs; mentor sentences mostly elaborate), plus a bonus when
    the sentence states a fact about the mentee (a goal, a name...), which must survive compression.
    """
    per_sentence = {s.position: _terms(s.text) for s in sentences}
    frequency = Counter(term for terms in per_sentence.values() for term in terms)
    top = max(frequency.values(), default=1)
    scores: dict[int, float] = {}
    for sentence in sentences:
        distinct = set(per_sentence[sentence.position])
        score = 0.0
        if distinct:
            score = sum(frequency[t] / top for t in distinct) / math.sqrt(len(distinct))
        if sentence.role == "user":
            score *= _USER_SENTENCE_WEIGHT
            if extract_facts(TurnView(0, "user", sentence.text)):
                score += _FACT_SENTENCE_BONUS
        scores[sentence.position] = score
    return scores


def _render_summary(sentences: Iterable[_Sentence]) -> str:
    """Render chosen sentences chronologically, one labelled line per run of the same speaker."""
    lines: list[tuple[Role, list[str]]] = []
    for sentence in sorted(sentences, key=lambda s: s.position):
        if lines and lines[-1][0] == sentence.role:
            lines[-1][1].append(sentence.text)
        else:
            lines.append((sentence.role, [sentence.text]))
    return "\n".join(f"{_SUMMARY_LABELS[role]}: {' '.join(texts)}" for role, texts in lines)


def _summarise_sentences(
    sentences: Sequence[_Sentence], max_sentences: int | None, max_tokens: int | None
) -> str:
    if max_sentences is None and max_tokens is None:
        raise ValueError("give max_sentences, max_tokens or both")
    scores = _score(sentences)
    # Best score first; ties go to the earlier sentence so the result is fully deterministic.
    ranked = sorted(sentences, key=lambda s: (-scores[s.position], s.position))
    chosen: list[_Sentence] = []
    for sentence in ranked:
        if max_sentences is not None and len(chosen) >= max_sentences:
            break
        candidate = [*chosen, sentence]
        # Exact check on the rendered text (labels included), so max_tokens is a hard limit.
        if max_tokens is not None and count_tokens(_render_summary(candidate)) > max_tokens:
            continue  # a shorter, lower-ranked sentence may still fit
        chosen = candidate
    return _render_summary(chosen)


def summarise(
    turns: Sequence[TurnView], *, max_sentences: int | None = 5, max_tokens: int | None = None
) -> str:
    """Extractive summary of ``turns``: the most informative sentences, verbatim.

    Sentences are scored by term frequency across all turns, with a bonus for mentee sentences
    that state facts (goals, field, level, name...), see ``_score``.  The best ones are kept
    (at most ``max_sentences``; and, when ``max_tokens`` is given, ``count_tokens(result) <=
    max_tokens`` is guaranteed) and rendered in chronological order as lines prefixed with
    ``"Mentee:"`` / ``"Mentor:"`` so the model knows who said what.  Duplicate sentences are
    collapsed.  Deterministic: same input, same output.  Returns ``""`` for no turns.
    """
    return _summarise_sentences(
        _split_sentences((t.role, t.text) for t in turns), max_sentences, max_tokens
    )


def _parse_summary(summary: str) -> list[tuple[Role, str]]:
    """Recover (role, text) pairs from a summary produced by ``summarise``.

    Unlabelled text (e.g. a summary written by an LLM) is attributed to the mentor so that no
    first-person statement in it is mistaken for a statement by the mentee.
    """
    parsed: list[tuple[Role, str]] = []
    for line in summary.splitlines():
        label, sep, rest = line.partition(":")
        role = _LABEL_TO_ROLE.get(label.strip()) if sep else None
        if role is not None:
            parsed.append((role, rest))
        elif line.strip():
            parsed.append(("assistant", line))
    return parsed


def update_summary(
    previous_summary: str,
    new_turns: Sequence[TurnView],
    *,
    max_sentences: int | None = 5,
    max_tokens: int | None = None,
) -> str:
    """Roll ``new_turns`` into ``previous_summary``.

    The previous summary's sentences (with their speaker labels) compete with the new turns'
    sentences under the same scoring as ``summarise``, so the summary stays bounded however long
    the conversation grows; limits and determinism are as in ``summarise``.
    """
    items = [*_parse_summary(previous_summary), *((t.role, t.text) for t in new_turns)]
    return _summarise_sentences(_split_sentences(items), max_sentences, max_tokens)


# --------------------------------------------------------------------------------------------
# Fact extraction
# --------------------------------------------------------------------------------------------

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})
_I_AM = r"\bi(?:'m|\s+am)"
_PHRASE = r"[^.!?;,\n]+"
_LEVEL_WORDS = (
    r"complete\s+beginner|beginner|novice|newbie|junior|senior|mid[- ]level|intermediate"
    r"|intern|new\s+grad|entry[- ]level|staff|principal"
)
_ROLE_NOUNS = (
    r"developer|engineer|designer|scientist|analyst|manager|researcher|architect|marketer"
    r"|consultant|student|administrator|sre|programmer|tester|writer|pm|lead"
)
_NUMBER = (
    r"\d{1,2}(?:\.\d)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
    r"|fifteen|twenty"
)
_CAREER_VERBS = (
    r"become|be|get\s+into|move\s+into|transition\s+into|switch\s+(?:in)?to|break\s+into|land"
    r"|work\s+as|grow\s+into|get\s+promoted|get\s+hired|get\s+a\s+job|change\s+careers?"
)
_LEARNING_FORMATS = (
    r"videos?|courses?|articles?|books?|tutorials?|podcasts?|projects?|exercises?|hands-on"
    r"|reading|docs|documentation|examples?|workshops?|lectures?|blogs?|newsletters?|bootcamps?"
    r"|pair\s+programming|mentoring|written|interactive"
)
_KO_ROLE_NOUNS = r"개발자|디자이너|엔지니어|기획자|분석가|사이언티스트|매니저|마케터|연구원|학생|PM"
_KO_LEVELS = r"주니어|시니어|신입|초보자?|입문자|중급자?"
# Korean phrases end at a keyword after them ("... 되고 싶어요"), so they cannot be anchored
# at their start; bounding their length keeps matching linear in the text (an unbounded lazy
# phrase is retried from every start position: a 4 000-character message took a second).
_KO_PHRASE = r"[^.!?,\n]{1,80}?"
_KO_PHRASE_OPT = r"[^.!?,\n]{0,80}?"


@dataclass(frozen=True, slots=True)
class _Rule:
    """A regex whose named groups are fact keys; ``constants`` are facts implied by a match."""

    regex: re.Pattern[str]
    confidence: float
    constants: tuple[tuple[FactKey, str], ...] = ()
    template: str = "{}"
    # The rule runs only when one of these substrings occurs in the text (a cheap pre-check
    # for rules without a leading anchor, which otherwise try every start position).
    needs: tuple[str, ...] = ()


def _rule(
    pattern: str,
    confidence: float,
    flags: int = re.IGNORECASE,
    constants: tuple[tuple[FactKey, str], ...] = (),
    template: str = "{}",
    needs: tuple[str, ...] = (),
) -> _Rule:
    return _Rule(re.compile(pattern, flags | re.MULTILINE), confidence, constants, template, needs)


# Confidence reflects how unambiguous the wording is: "my name is" is near-certain, "I like X" is
# a weaker preference signal than "I prefer X".  Case-sensitive parts (names must be capitalised
# after "call me") use scoped (?i:...) groups.
_RULES: tuple[_Rule, ...] = (
    # --- name
    _rule(r"(?i:\bmy\s+name(?:\s+is|'s))\s+(?P<name>[^\W\d_][\w'-]*(?:\s+[A-Z][\w'-]*){0,2})",
          0.95, flags=0),
    _rule(r"(?i:\bcall\s+me)\s+(?P<name>[A-Z][\w'-]*)", 0.85, flags=0),
    _rule(r"^(?i:(?:hi|hello|hey)(?:\s+there)?[,!.]?\s+(?:i'm|i\s+am|this\s+is))\s+"
          r"(?P<name>[A-Z][\w'-]*)\b", 0.75, flags=0),
    _rule(r"제\s*이름은\s*(?P<name>[가-힣A-Za-z]{1,10}?)\s*"
          r"(?:입니다|이에요|예요|이고|이야|야|이라고|라고|[.,!?]|\s|$)", 0.95),
    _rule(r"(?P<name>[가-힣]{2,4}?)(?:이라고|라고)\s*(?:합니다|해요|불러)", 0.85),
    # --- goal
    _rule(rf"\bmy\s+(?:main\s+|long[- ]term\s+|career\s+|ultimate\s+|big\s+)?goal\s+is\s+"
          rf"(?:to\s+)?(?P<goal>{_PHRASE})", 0.95),
    _rule(rf"\bi(?:\s+really)?(?:\s+(?:want|would\s+(?:really\s+)?like|hope|plan|aim|aspire"
          rf"|intend)\s+to|'d\s+(?:really\s+)?like\s+to|\s+wanna)\s+"
          rf"(?P<goal>(?:{_CAREER_VERBS})\b{_PHRASE})", 0.9),
    _rule(rf"{_I_AM}\s+(?:aiming|hoping|planning|trying|working)\s+(?:to|towards?|for)\s+"
          rf"(?P<goal>(?:{_CAREER_VERBS})\b{_PHRASE})", 0.8),
    _rule(r"(?:제|저의|나의|내)\s*(?:최종\s*|커리어\s*)?목표는\s*(?P<goal>[^.!?\n]+?)\s*"
          r"(?:입니다|이에요|예요|에요|이다|야)?\s*(?:[.!?]|$)", 0.95),
    _rule(rf"(?P<goal>{_KO_PHRASE}(?:이|가))\s*되고\s*싶", 0.9, template="{} 되는 것",
          needs=("되고",)),
    # --- field (and level when it qualifies the role)
    _rule(rf"\bi\s+(?:currently\s+)?work\s+as\s+(?:an?\s+)?(?:(?P<level>{_LEVEL_WORDS})\s+)?"
          rf"(?P<field>{_PHRASE})", 0.9),
    _rule(rf"\bi\s+(?:currently\s+)?work\s+in\s+(?:the\s+)?(?P<field>{_PHRASE})", 0.85),
    _rule(rf"{_I_AM}\s+(?:currently\s+|now\s+)?(?:an?\s+)?(?:(?P<level>{_LEVEL_WORDS})\s+)?"
          rf"(?P<field>(?:[\w+#./-]+\s+){{0,3}}(?:{_ROLE_NOUNS}))\b", 0.85),
    _rule(rf"\bmy\s+(?:field|background|area|specialty|speciali[sz]ation)\s+is\s+(?:in\s+)?"
          rf"(?P<field>{_PHRASE})", 0.8),
    _rule(rf"저는\s*(?:(?P<level>{_KO_LEVELS})\s*)?(?P<field>{_KO_PHRASE_OPT}(?:{_KO_ROLE_NOUNS}))"
          r"(?!\s*(?:이|가)?\s*되)", 0.85),
    _rule(rf"(?P<field>{_KO_PHRASE})\s*(?:분야|쪽|업계)에서\s*일하고", 0.8, needs=("일하고",)),
    # --- level
    _rule(rf"{_I_AM}\s+(?:still\s+)?(?:an?\s+)?(?:complete\s+|total\s+)?"
          rf"(?P<level>{_LEVEL_WORDS})\b", 0.85),
    _rule(rf"{_I_AM}\s+(?:completely\s+|totally\s+|pretty\s+|quite\s+|very\s+)?new\s+to\b",
          0.7, constants=(("level", "beginner"),)),
    _rule(rf"{_I_AM}\s+just\s+(?:starting|getting\s+started)\b", 0.7,
          constants=(("level", "beginner"),)),
    _rule(rf"저는\s*(?P<level>{_KO_LEVELS})(?!\s*(?:은|는|이|가)?\s*아니)", 0.8),
    # --- years of experience
    _rule(rf"\b(?P<experience_years>{_NUMBER})\+?\s*(?:years?|yrs?)\s+(?:of\s+)?"
          r"(?:professional\s+|work\s+|working\s+|industry\s+|relevant\s+)?(?:experience|exp)\b",
          0.9),
    _rule(rf"\bi(?:'ve|\s+have)\s+(?:been\s+)?(?:\w+\s+){{0,4}}?for\s+"
          rf"(?:about\s+|around\s+|almost\s+|over\s+|nearly\s+)?(?P<experience_years>{_NUMBER})"
          r"\s+years?\b", 0.85),
    _rule(rf"\bi(?:'ve|\s+have)\s+(?:got\s+)?(?:about\s+|around\s+)?"
          rf"(?P<experience_years>{_NUMBER})\s+years?\s+(?:in|as|at)\b", 0.85),
    _rule(r"(?:경력|경험)(?:은|이)?\s*(?P<experience_years>\d{1,2})\s*년", 0.9),
    _rule(r"(?P<experience_years>\d{1,2})\s*년\s*(?:차|째|경력|동안|간)", 0.85),
    # --- learning preference
    _rule(rf"\bi\s+(?:much\s+|really\s+|generally\s+|usually\s+|strongly\s+)?prefer\s+"
          rf"(?P<preference>{_PHRASE})", 0.85),
    _rule(rf"\bi\s+learn\s+best\s+(?:with|through|by|from|via)\s+(?P<preference>{_PHRASE})", 0.8),
    _rule(rf"\bi\s+(?:really\s+)?(?:like|love|enjoy)\s+"
          rf"(?P<preference>[^.!?;,\n]*?\b(?:{_LEARNING_FORMATS})\b[^.!?;,\n]*)", 0.7),
    _rule(rf"(?P<preference>{_KO_PHRASE})(?:을|를)?\s*선호(?:해요|합니다|하는\s*편|해|함)", 0.85,
          needs=("선호",)),
)  # fmt: skip

# A value ends where a new clause about the speaker starts ("... data scientist and I like ..."),
# or at a subordinate clause; "video courses and short articles" stays whole.
_CLAUSE_END_RE = re.compile(
    r"\s+(?:and|but|so|because|since|as|though|although|while|which|who|where)\s+"
    r"(?:i|i'm|i've|i'd|i'll|my|me|it|that|this|there|we)\b"
    r"|\s+(?:but|because|although|though|since|so\s+that|in\s+order\s+to)\b",
    re.IGNORECASE,
)
# For a field, the employer or team is noise: "backend development at a startup".
_FIELD_END_RE = re.compile(r"\s+(?:at|for|with)\s+", re.IGNORECASE)
_TRAILING_FILLER_RE = re.compile(
    r"(?:\s+(?:someday|one\s+day|eventually|in\s+the\s+future|soon|now|too|though))+\s*$",
    re.IGNORECASE,
)
_KO_LEADING_SUBJECT_RE = re.compile(r"^\s*(?:저는|전|나는|난|제가|내가)\s+")
_MAX_VALUE_WORDS = 12
_NOT_NAMES = frozenset({"not", "a", "an", "the", "is", "just", "really", "so", "very"})
_LEVEL_CANONICAL = {
    "complete beginner": "beginner", "novice": "beginner", "newbie": "beginner",
    "mid level": "mid-level", "intermediate": "mid-level", "entry level": "entry-level",
    "new grad": "entry-level", "주니어": "junior", "시니어": "senior", "신입": "entry-level",
    "초보": "beginner", "초보자": "beginner", "입문자": "beginner", "중급": "mid-level",
    "중급자": "mid-level",
}  # fmt: skip
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
}  # fmt: skip


def _clean_phrase(raw: str, *extra_ends: re.Pattern[str]) -> str:
    value = raw
    for pattern in (_CLAUSE_END_RE, *extra_ends):
        match = pattern.search(value)
        if match:
            value = value[: match.start()]
    value = _KO_LEADING_SUBJECT_RE.sub("", value)
    value = _TRAILING_FILLER_RE.sub("", value)
    return " ".join(value.split()[:_MAX_VALUE_WORDS]).strip(" '\"")


def _clean_name(raw: str) -> str:
    name = " ".join(raw.split())
    if name.lower() in _NOT_NAMES:
        return ""
    return name[0].upper() + name[1:] if name[0].islower() else name


def _clean_level(raw: str) -> str:
    level = " ".join(raw.lower().split())
    return _LEVEL_CANONICAL.get(level, level.replace(" ", "-"))


def _clean_years(raw: str) -> str:
    word = raw.lower().strip()
    years = float(_NUMBER_WORDS[word]) if word in _NUMBER_WORDS else float(word)
    if not 0 < years <= 60:  # "0 years" or "80 years" is not a career length worth storing
        return ""
    return str(int(years)) if years.is_integer() else str(years)


_NORMALISERS: dict[FactKey, Callable[[str], str]] = {
    "name": _clean_name,
    "goal": _clean_phrase,
    "field": lambda raw: _clean_phrase(raw, _FIELD_END_RE),
    "level": _clean_level,
    "experience_years": _clean_years,
    "preference": _clean_phrase,
}


def extract_facts(turn: TurnView) -> list[Fact]:
    """Extract facts the mentee states about themself in ``turn``.

    Only user turns are read (the mentor's "I'd like to ..." is not a fact about the mentee).
    Recognised, in English and Korean:

    * ``name`` - "my name is Mina", "call me Mina", "Hi, I'm Mina", "제 이름은 민아입니다",
      "민아라고 합니다";
    * ``goal`` - "I want to become a data scientist", "my goal is to ...", "I'm aiming to ...",
      "제 목표는 ...", "... 가 되고 싶어요" (stored as "...가 되는 것");
    * ``field`` - "I work in backend development", "I work as ...", "I'm a UX designer",
      "my background is ...", "저는 백엔드 개발자입니다", "... 분야에서 일하고 있어요";
    * ``level`` - "I'm a junior / beginner / senior ...", "I'm new to ...", "저는 주니어 ..."
      (normalised to English: beginner, junior, mid-level, senior, entry-level, ...);
    * ``experience_years`` - "3 years of experience", "I've been coding for two years",
      "경력 3년", "3년차" (stored as a number string, e.g. "3" or "1.5");
    * ``preference`` - "I prefer video courses", "I like short articles" (only learning formats),
      "I learn best with ...", "영상 강의를 선호해요".

    Returns at most one fact per key, in ``FACT_KEYS`` order; when a turn matches a key several
    times the most confident match wins, and among equals the later statement.
    """
    if turn.role != "user":
        return []
    text = turn.text.translate(_APOSTROPHES)  # same length, so match offsets stay valid
    best: dict[FactKey, tuple[float, int, str]] = {}
    for rule in _RULES:
        if rule.needs and not any(needle in text for needle in rule.needs):
            continue
        for match in rule.regex.finditer(text):
            found: list[tuple[FactKey, str]] = [
                (cast(FactKey, key), rule.template.format(raw))
                for key, raw in match.groupdict().items()
                if raw
            ]
            found.extend(rule.constants)
            for key, raw in found:
                value = _NORMALISERS[key](raw)
                if not value:
                    continue
                candidate = (rule.confidence, match.start(), value)
                current = best.get(key)
                if current is None or candidate[:2] >= current[:2]:
                    best[key] = candidate
    return [
        Fact(key, best[key][2], source_turn=turn.index, confidence=best[key][0])
        for key in FACT_KEYS
        if key in best
    ]


def merge_facts(existing: Mapping[str, Fact], new: Iterable[Fact]) -> dict[str, Fact]:
    """Return ``existing`` updated with ``new`` (inputs are not modified).

    Later facts override earlier ones for the same key: "later" means a greater-or-equal
    ``source_turn`` when both facts have one, otherwise the order of the call (``new`` after
    ``existing``, and within ``new`` in iteration order).  Confidence does not block an override:
    people do change goals, and the newest statement is the best evidence we have.
    """
    merged = dict(existing)
    for fact in new:
        current = merged.get(fact.key)
        if (
            current is not None
            and current.source_turn is not None
            and fact.source_turn is not None
            and fact.source_turn < current.source_turn
        ):
            continue  # replaying an older turn must not undo a newer statement
        merged[fact.key] = fact
    return merged


def facts_from_turns(
    turns: Iterable[TurnView], existing: Mapping[str, Fact] | None = None
) -> dict[str, Fact]:
    """Extract facts from every turn in order and merge them onto ``existing``."""
    facts = dict(existing or {})
    for turn in turns:
        facts = merge_facts(facts, extract_facts(turn))
    return facts


def fact_values(facts: Mapping[str, Fact]) -> dict[str, str]:
    """``{key: value}`` view of facts, the shape responders take."""
    return {key: fact.value for key, fact in facts.items()}


# --------------------------------------------------------------------------------------------
# Context assembly
# --------------------------------------------------------------------------------------------

_FACT_LABELS: dict[str, str] = {
    "name": "Name",
    "goal": "Goal",
    "field": "Field",
    "level": "Level",
    "experience_years": "Years of experience",
    "preference": "Learning preference",
}
_FACTS_HEADER = "What you know about the mentee (remembered across sessions):"
_SUMMARY_HEADER = "Summary of the earlier conversation:"


def _ordered_facts(facts: Mapping[str, Fact]) -> list[Fact]:
    rank = {key: i for i, key in enumerate(FACT_KEYS)}
    return sorted(facts.values(), key=lambda f: (rank.get(f.key, len(rank)), f.key))


def _system_content(system_prompt: str, facts: Sequence[Fact], summary: str) -> str:
    parts = [system_prompt.strip()]
    if facts:
        lines = [f"- {_FACT_LABELS.get(f.key, f.key)}: {f.value}" for f in facts]
        parts.append("\n".join([_FACTS_HEADER, *lines]))
    if summary:
        parts.append(f"{_SUMMARY_HEADER}\n{summary}")
    return "\n\n".join(p for p in parts if p)


def _assemble(
    system_prompt: str,
    facts: Sequence[Fact],
    summary: str,
    turns: Sequence[TurnView],
    user_message: str,
) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    system = _system_content(system_prompt, facts, summary)
    if system:
        messages.append({"role": "system", "content": system})
    messages.extend({"role": t.role, "content": t.text} for t in turns)
    messages.append({"role": "user", "content": user_message})
    return messages


def build_context(
    *,
    system_prompt: str,
    facts: Mapping[str, Fact],
    summary: str,
    recent_turns: Sequence[TurnView],
    user_message: str,
    budget_tokens: int,
) -> Context:
    """Build the chat messages for a responder within ``budget_tokens``.

    Layout: one system message (``system_prompt``, then the facts as a bulleted list, then the
    rolling ``summary``), the ``recent_turns`` in order (they must not include the new message),
    and finally ``user_message`` as the last user message.

    Guarantee: ``result.tokens == messages_tokens(result.messages) <= budget_tokens``.  When the
    full context does not fit, it is reduced in this order, each step only as far as needed:

    1. drop the oldest recent turns (they are the most redundant with the summary);
    2. shorten the summary (re-selecting its most important sentences), then drop it;
    3. drop facts, least confident first (ties: the least identifying key first).

    The system prompt and the user message are never cut: if they alone exceed the budget,
    ``ContextBudgetError`` is raised so the caller can reject or split the message explicitly.
    """
    turns = list(recent_turns)
    kept_facts = _ordered_facts(facts)
    summary = summary.strip()

    def total() -> tuple[list[dict[str, str]], int]:
        messages = _assemble(system_prompt, kept_facts, summary, turns, user_message)
        return messages, messages_tokens(messages)

    messages, tokens = total()
    while tokens > budget_tokens and turns:
        turns.pop(0)
        messages, tokens = total()
    while tokens > budget_tokens and summary:
        # Ask for a summary smaller by the overshoot; it strictly shrinks each round because the
        # target is below its current size, so the loop terminates (at worst with "").
        target = count_tokens(summary) - (tokens - budget_tokens)
        summary = _shorten_summary(summary, target) if target > 0 else ""
        messages, tokens = total()
    if tokens > budget_tokens and kept_facts:
        rank = {key: i for i, key in enumerate(FACT_KEYS)}
        drop_order = sorted(kept_facts, key=lambda f: (f.confidence, -rank.get(f.key, len(rank))))
        for fact in drop_order:
            kept_facts.remove(fact)
            messages, tokens = total()
            if tokens <= budget_tokens:
                break
    if tokens > budget_tokens:
        raise ContextBudgetError(
            f"system prompt and user message need {tokens} tokens, budget is {budget_tokens}"
        )
    return Context(messages, tokens)


def _shorten_summary(summary: str, max_tokens: int) -> str:
    """Re-select the summary's most important sentences within ``max_tokens`` (may be "")."""
    return _summarise_sentences(_split_sentences(_parse_summary(summary)), None, max_tokens)
