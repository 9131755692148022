"""Offline mentor: answers from the shipped mentoring knowledge base, no network needed.

Retrieval is a small TF-IDF over each entry's question, tags, topic and answer (question and
tags weigh double because they say what an entry is *about*; answers mention many things in
passing).  The query is the mentee's last message plus, at lower weight, their previous few
messages (so "and what about for frontend?" keeps its context) and their goal/field (a mild
nudge towards entries relevant to them).  The reply wraps the best entry's answer in a short
personalised frame built from the mentee's facts.  Everything is deterministic.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from conversations.memory import count_tokens, messages_tokens
from conversations.responders.base import Reply, ResponderError

#: Default knowledge base: ``conversations/knowledge_base.json``, next to this package.
DEFAULT_KB_PATH = Path(__file__).resolve().parent.parent / "knowledge_base.json"

_REQUIRED_FIELDS = ("id", "topic", "tags", "question", "answer")
_QUESTION_WEIGHT = 2.0
_TAG_WEIGHT = 2.0
_TOPIC_WEIGHT = 1.0
_ANSWER_WEIGHT = 0.5
_CONTEXT_WEIGHT = 0.3  # earlier user messages: context, not the question being asked
_FACT_WEIGHT = 0.15  # goal/field: a tie-breaker towards the mentee's own path, no more
_RELATED_RATIO = 0.6  # suggest the runner-up when it scores at least this fraction of the best

_WORD_RE = re.compile(r"[a-z0-9]+")
_STOPWORD_TEXT = (
    "a about after all also am an and any are as at be been being but by can could did do does "
    "doing for from get got had has have how i if in into is it its just me more most my no not "
    "now of on or our out should so some than that the their them then there these they this "
    "to too up us very was we were what when where which while who why will with would you your "
    "yours want know tell really need please thanks thank hi hello hey ok okay much many one way "
    "best good better thing things lot"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# The knowledge base is English; these let common Korean questions reach the right entries.
_KOREAN_HINTS: dict[str, str] = {
    "면접": "interview",
    "이력서": "resume",
    "연봉": "salary",
    "협상": "negotiation",
    "이직": "career change switch",
    "전직": "career change",
    "번아웃": "burnout",
    "포트폴리오": "portfolio",
    "백엔드": "backend",
    "프론트엔드": "frontend",
    "데이터 사이언티스트": "data science scientist",
    "데이터 과학": "data science",
    "머신러닝": "machine learning",
    "데브옵스": "devops",
    "기획자": "product management",
    "프로덕트": "product management",
    "디자이너": "ux design designer",
    "승진": "promotion",
    "리더십": "leadership",
    "피드백": "feedback",
    "재택": "remote work",
    "원격": "remote work",
    "네트워킹": "networking",
    "사이드 프로젝트": "side projects",
    "멘토": "mentor mentoring",
    "시간 관리": "time management",
    "가면 증후군": "imposter syndrome",
    "신입": "first job junior",
    "첫 직장": "first job",
    "로드맵": "roadmap learning path",
    "공부": "learning path",
}
_GOAL_VERB_TEXT = (
    "become be get move transition switch break land work grow change learn build lead find "
    "start join earn make improve pass launch"
)
_GOAL_VERBS = frozenset(_GOAL_VERB_TEXT.split())
_ROLE_SUFFIXES = (
    "developer", "engineer", "designer", "scientist", "analyst", "manager", "researcher",
    "architect", "marketer", "consultant", "student", "administrator", "programmer", "lead",
)  # fmt: skip
_EARLY_LEVELS = frozenset({"beginner", "junior", "entry-level", "intern"})


def _stem(word: str) -> str:
    """Very light suffix stripping so "interviews"/"interviewing" meet "interview"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    # "negotiate" and "negotiat(ing)" should meet too.
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def _terms(text: str) -> list[str]:
    lowered = text.lower()
    hints = [english for korean, english in _KOREAN_HINTS.items() if korean in lowered]
    words = _WORD_RE.findall(" ".join([lowered, *hints]))
    return [_stem(w) for w in words if w not in _STOPWORDS and len(w) > 1]


@dataclass(frozen=True, slots=True)
class KnowledgeEntry:
    """One question-answer entry of the knowledge base."""

    id: str
    topic: str
    tags: tuple[str, ...]
    question: str
    answer: str


def load_knowledge_base(path: str | Path = DEFAULT_KB_PATH) -> list[KnowledgeEntry]:
    """Load and validate a knowledge base JSON file (a list of entry objects).

    Raises ``ValueError`` for a malformed file (missing or empty fields, duplicate ids), since a
    broken knowledge base is a deployment error that should fail loudly at start-up.
    """
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of entries")
    entries: list[KnowledgeEntry] = []
    seen: set[str] = set()
    for position, item in enumerate(raw):
        if not isinstance(item, dict) or any(not item.get(f) for f in _REQUIRED_FIELDS):
            raise ValueError(f"{path}: entry #{position} must have non-empty {_REQUIRED_FIELDS}")
        tags = item["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise ValueError(f"{path}: entry {item['id']!r} tags must be non-empty strings")
        if item["id"] in seen:
            raise ValueError(f"{path}: duplicate entry id {item['id']!r}")
        seen.add(item["id"])
        entries.append(
            KnowledgeEntry(
                id=str(item["id"]),
                topic=str(item["topic"]),
                tags=tuple(tags),
                question=str(item["question"]),
                answer=str(item["answer"]),
            )
        )
    return entries


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {t: w / norm for t, w in weights.items()} if norm else {}


class KnowledgeBaseResponder:
    """``Responder`` answering from the knowledge base with TF-IDF retrieval.

    ``min_score`` is the cosine similarity below which no entry is considered relevant and a
    clarifying fallback is returned instead of a wrong answer; ``context_messages`` is how many
    earlier user messages are added (at reduced weight) to the query.
    """

    backend = "offline-kb"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        min_score: float = 0.12,
        context_messages: int = 2,
    ) -> None:
        self._entries = load_knowledge_base(path or DEFAULT_KB_PATH)
        self.min_score = min_score
        self.context_messages = context_messages
        documents = [self._document_counts(e) for e in self._entries]
        document_frequency = Counter(term for doc in documents for term in doc)
        total = len(documents)
        # Smoothed idf (as in scikit-learn): never zero, rare terms weigh most.
        self._idf = {
            term: math.log((1 + total) / (1 + df)) + 1 for term, df in document_frequency.items()
        }
        self._unknown_idf = math.log(1 + total) + 1
        # Sublinear tf so an answer repeating a word does not drown the question and tags.
        self._vectors = [
            _normalised({t: (1 + math.log(c)) * self._idf[t] for t, c in doc.items()})
            for doc in documents
        ]

    @property
    def entries(self) -> list[KnowledgeEntry]:
        """The loaded entries (a copy)."""
        return list(self._entries)

    @staticmethod
    def _document_counts(entry: KnowledgeEntry) -> dict[str, float]:
        counts: defaultdict[str, float] = defaultdict(float)
        for text, weight in (
            (entry.question, _QUESTION_WEIGHT),
            (" ".join(entry.tags), _TAG_WEIGHT),
            (entry.topic.replace("-", " "), _TOPIC_WEIGHT),
            (entry.answer, _ANSWER_WEIGHT),
        ):
            for term in _terms(text):
                counts[term] += weight
        # Counts are weighted (smallest 0.5), so the sublinear 1 + log(c) stays positive.
        return dict(counts)

    def search(
        self,
        query: str,
        *,
        context: Iterable[str] = (),
        facts: Mapping[str, str] | None = None,
        limit: int = 3,
    ) -> list[tuple[KnowledgeEntry, float]]:
        """Best entries for ``query`` as ``(entry, cosine score)``, best first.

        Ties are broken by knowledge-base order, so results are deterministic.  Entries with a
        score of zero are never returned.
        """
        weights: defaultdict[str, float] = defaultdict(float)
        for term in _terms(query):
            weights[term] += 1.0
        for text in context:
            for term in _terms(text):
                weights[term] += _CONTEXT_WEIGHT
        for key in ("goal", "field"):
            for term in _terms((facts or {}).get(key, "")):
                weights[term] += _FACT_WEIGHT
        # Words the knowledge base never uses get the highest idf instead of being dropped, so
        # "what is the weather today" is not judged on "today" alone and falls back instead.
        query_vector = _normalised(
            {t: w * self._idf.get(t, self._unknown_idf) for t, w in weights.items()}
        )
        if not any(t in self._idf for t in query_vector):
            return []
        scored = [
            (sum(w * vector.get(t, 0.0) for t, w in query_vector.items()), position)
            for position, vector in enumerate(self._vectors)
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [(self._entries[pos], score) for score, pos in scored[:limit] if score > 0]

    def respond(self, messages: Sequence[Mapping[str, str]], *, facts: Mapping[str, str]) -> Reply:
        """Answer the last user message from the knowledge base (see the module docstring)."""
        user_texts = [m.get("content", "") for m in messages if m.get("role") == "user"]
        if not user_texts or not user_texts[-1].strip():
            raise ResponderError(
                "Please type a question for your mentor.", detail="no user message to answer"
            )
        query = user_texts[-1]
        context = user_texts[-1 - self.context_messages : -1] if self.context_messages else []
        hits = self.search(query, context=context, facts=facts, limit=2)
        if not hits or hits[0][1] < self.min_score:
            text = _fallback(facts)
        else:
            best, best_score = hits[0]
            related = None
            runner_up = hits[1] if len(hits) > 1 else None
            # Point to a close runner-up from another topic; same-topic ones add little.
            if runner_up and runner_up[1] >= _RELATED_RATIO * best_score:
                related = runner_up[0] if runner_up[0].topic != best.topic else None
            text = _compose(best, facts, related)
        return Reply(
            text=text,
            tokens=messages_tokens(messages) + count_tokens(text),
            backend=self.backend,
        )


def _goal_phrase(goal: str) -> str:
    """Make a stored goal read after "your goal is": "to become a data scientist"."""
    if not goal.isascii():
        return f'"{goal}"'
    first = goal.split()[0].lower() if goal.split() else ""
    return f"to {goal}" if first in _GOAL_VERBS else goal


def _article(phrase: str) -> str:
    """ "a" or "an" by sound: "an engineer", "a UX designer", "an SRE"."""
    first = phrase.split()[0]
    if first.isupper() and len(first) > 1:  # acronyms are spelled out: "an ML engineer"
        return "an" if first[0] in "AEFHILMNORSX" else "a"
    return "an" if first[0].lower() in "aeiou" else "a"


def _field_phrase(field: str) -> str:
    """ "experience as a UX designer" / "background in backend development"."""
    if field.isascii() and field.lower().endswith(_ROLE_SUFFIXES):
        return f"experience as {_article(field)} {field}"
    return f"background in {field}"


def _opening(facts: Mapping[str, str]) -> str:
    """First sentence: address the mentee by name and tie the answer to their goal/field."""
    name = facts.get("name", "").strip()
    goal = facts.get("goal", "").strip()
    field = facts.get("field", "").strip()
    if goal and field:
        sentence = (
            f"Since your goal is {_goal_phrase(goal)}, and building on your "
            f"{_field_phrase(field)}, here is how I would approach it."
        )
    elif goal:
        sentence = f"Since your goal is {_goal_phrase(goal)}, here is what I would focus on."
    elif field:
        sentence = f"Building on your {_field_phrase(field)}, here is how I would approach it."
    else:
        sentence = "Here is how I would approach it."
    return f"{name}, {sentence[0].lower()}{sentence[1:]}" if name else sentence


def _compose(
    entry: KnowledgeEntry, facts: Mapping[str, str], related: KnowledgeEntry | None
) -> str:
    """Opening paragraph, the entry's answer with personal notes, then an optional pointer."""
    body = [entry.answer]
    preference = facts.get("preference", "").strip()
    if preference and entry.topic.startswith("learning-"):
        body.append(f"Since you prefer {preference}, pick resources in that format for each step.")
    if facts.get("level", "").strip().lower() in _EARLY_LEVELS:
        body.append("As you are early in your journey, choose one step and start on it this week.")
    paragraphs = [_opening(facts), " ".join(body)]
    if related is not None:
        paragraphs.append(f'A related question you could ask me next: "{related.question}"')
    return "\n\n".join(paragraphs)


def _fallback(facts: Mapping[str, str]) -> str:
    name = facts.get("name", "").strip()
    goal = facts.get("goal", "").strip()
    text = (
        f"{name + ', I' if name else 'I'} don't have a specific note on that yet. Could you tell "
        "me a bit more about what you are trying to achieve? I can help with career changes, "
        "first jobs, interviews, resumes, salary negotiation, learning paths (backend, frontend, "
        "data science, machine learning, DevOps, product management, UX), leadership, feedback, "
        "remote work, networking, side projects, burnout, promotions and mentoring."
    )
    if goal:
        text += (
            f" Since your goal is {_goal_phrase(goal)}, a good next step is to write down the "
            "biggest gap between where you are and that goal, and we can plan around it."
        )
    return text
