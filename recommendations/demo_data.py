"""Seeded generator of a demo mentoring catalogue and of interactions with planted structure.

Pure module (no Django): returns :class:`~recommendations.engines.base.Item` /
:class:`~recommendations.engines.base.Interaction` dataclasses plus plain dicts, so it can feed
the engines' tests, the offline evaluation, a seeding management command or fixtures alike.

Catalogue: for every *cluster* = field × level (10 fields × 3 levels) ``items_per_cluster`` items
(mentors, courses and articles) whose titles, descriptions and tags are assembled from per-field
topic lists, per-level phrasing, formats and mentor names. Titles are unique.

Interactions (planted structure the engines should recover):

* every user belongs to one latent cluster (field, level); fields and levels are skewed;
* ~68 % of a user's engagements are items of their own cluster, ~15 % the same field at an
  adjacent level, ~9 % a related field, the rest anything (weighted by popularity);
* items have a log-normal *appeal* (a few "featured" ones much higher), so popularity is skewed
  and a popularity baseline is meaningful but not strong;
* each engagement is a funnel over time: view → maybe click → maybe adopt → maybe complete, more
  likely inside the user's own cluster; users join at different times across ``days`` and act
  in sequence, so a time-based split has both warm and cold-start users;
* some items outside the user's interests are dismissed.

Same ``seed`` ⇒ identical output (only ``random.Random`` instances seeded from ``seed`` are used).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from recommendations.engines.base import (
    DEFAULT_WEIGHTS,
    Interaction,
    InteractionKind,
    Item,
    ItemKind,
)


@dataclass(frozen=True, slots=True)
class Field:
    """A mentoring field with the vocabulary used to write its content."""

    slug: str
    name: str
    topics: tuple[str, ...]
    roles: tuple[str, ...]
    skills: tuple[str, ...]
    related: tuple[str, ...]
    #: relative share of users interested in this field
    demand: float
    #: who content of each level (beginner, intermediate, advanced) is written for
    audiences: tuple[str, str, str]


FIELDS: Final[tuple[Field, ...]] = (
    Field(
        "backend",
        "Backend Engineering",
        (
            "REST API Design", "PostgreSQL Performance Tuning", "Django in Production",
            "Microservice Architecture", "Caching Strategies", "Asynchronous Python",
            "Message Queues", "Authentication and Authorization", "Designing Data Models",
        ),
        ("Backend Engineer", "Staff Software Engineer", "Platform Engineer", "Software Architect"),
        ("python", "apis", "databases", "distributed-systems"),
        ("devops", "interview-prep"),
        1.4,
        (
            "people new to backend development",
            "backend developers with a year or two of experience",
            "senior backend engineers",
        ),
    ),
    Field(
        "data-science",
        "Data Science",
        (
            "Exploratory Data Analysis", "A/B Testing Statistics", "Pandas for Analysts",
            "Data Visualisation", "SQL for Analytics", "Causal Inference",
            "Time Series Forecasting", "Dashboard Storytelling", "Experiment Design",
        ),
        ("Data Scientist", "Analytics Lead", "Senior Data Analyst", "Head of Data"),
        ("statistics", "sql", "pandas", "analytics"),
        ("machine-learning", "product-management"),
        1.2,
        (
            "people new to data science",
            "analysts and data scientists with some experience",
            "senior data scientists",
        ),
    ),
    Field(
        "product-management",
        "Product Management",
        (
            "Product Discovery", "Roadmap Prioritisation", "Writing Product Specs",
            "Stakeholder Management", "Product Metrics and OKRs", "User Research for PMs",
            "Go-to-Market Planning", "Pricing Strategy", "Working with Engineering Teams",
        ),
        ("Product Manager", "Group Product Manager", "Director of Product", "Head of Product"),
        ("roadmapping", "discovery", "metrics", "strategy"),
        ("ux-design", "startup"),
        1.0,
        (
            "aspiring product managers",
            "product managers with a few launches behind them",
            "senior and group product managers",
        ),
    ),
    Field(
        "ux-design",
        "UX Design",
        (
            "User Interviews", "Wireframing and Prototyping", "Design Systems",
            "Usability Testing", "Information Architecture", "Accessible Design",
            "Interaction Design", "Figma Workflows", "UX Writing",
        ),
        ("UX Designer", "Product Designer", "Design Lead", "UX Researcher"),
        ("figma", "user-research", "prototyping", "accessibility"),
        ("product-management", "career-change"),
        0.9,
        (
            "people new to UX design",
            "designers with some professional experience",
            "senior designers and design leads",
        ),
    ),
    Field(
        "career-change",
        "Career Change",
        (
            "Switching into Tech", "Building a Portfolio", "Networking for Career Changers",
            "Transferable Skills", "Landing Your First Tech Job", "Learning to Code as an Adult",
            "Personal Branding on LinkedIn", "Negotiating Your First Offer", "Choosing a Bootcamp",
        ),
        ("Career Coach", "Engineering Manager", "Talent Partner", "Bootcamp Instructor"),
        ("portfolio", "networking", "job-search", "personal-branding"),
        ("interview-prep", "ux-design"),
        1.1,
        (
            "people considering a move into tech",
            "career changers already learning on the side",
            "career changers close to their first tech role",
        ),
    ),
    Field(
        "leadership",
        "Leadership",
        (
            "First-time Management", "Running Effective One-on-Ones", "Giving Feedback",
            "Hiring and Onboarding", "Managing Managers", "Team Health and Burnout",
            "Delegation", "Leading Through Change", "Performance Reviews",
        ),
        ("Engineering Manager", "VP of Engineering", "Director of Engineering", "CTO"),
        ("management", "feedback", "hiring", "coaching"),
        ("startup", "product-management"),
        0.8,
        (
            "engineers thinking about management",
            "new engineering managers",
            "experienced managers of managers",
        ),
    ),
    Field(
        "interview-prep",
        "Interview Preparation",
        (
            "Coding Interviews", "System Design Interviews", "Behavioural Interviews",
            "Take-home Assignments", "Mock Interviews", "Data Structures and Algorithms",
            "Salary Negotiation", "Resume Writing", "Interviewing at Big Tech",
        ),
        ("Senior Software Engineer", "Hiring Manager", "Technical Recruiter", "Interview Coach"),
        ("algorithms", "resume", "negotiation", "job-search"),
        ("career-change", "backend"),
        1.2,
        (
            "candidates preparing for their first tech interviews",
            "mid-level engineers preparing for a job move",
            "senior candidates targeting staff-level roles",
        ),
    ),
    Field(
        "machine-learning",
        "Machine Learning",
        (
            "Supervised Learning", "Deep Learning with PyTorch", "Feature Engineering",
            "Model Evaluation", "Recommender Systems", "Natural Language Processing",
            "MLOps and Model Deployment", "Large Language Models", "Computer Vision",
        ),
        ("Machine Learning Engineer", "Research Scientist", "Applied Scientist", "ML Lead"),
        ("python", "pytorch", "mlops", "deep-learning"),
        ("data-science", "backend"),
        1.3,
        (
            "people new to machine learning",
            "ML practitioners with a few projects shipped",
            "senior machine learning engineers",
        ),
    ),
    Field(
        "devops",
        "DevOps",
        (
            "Docker and Containers", "Kubernetes Operations", "CI/CD Pipelines",
            "Infrastructure as Code with Terraform", "Observability and Monitoring",
            "Incident Response", "Cloud Cost Optimisation", "Linux Fundamentals",
            "Site Reliability Engineering",
        ),
        ("DevOps Engineer", "Site Reliability Engineer", "Cloud Architect", "Infrastructure Lead"),
        ("kubernetes", "terraform", "ci-cd", "cloud"),
        ("backend", "machine-learning"),
        0.9,
        (
            "people new to DevOps and infrastructure",
            "engineers running services in production",
            "senior SRE and platform engineers",
        ),
    ),
    Field(
        "startup",
        "Startups",
        (
            "Validating a Startup Idea", "Fundraising and Pitch Decks",
            "Finding Product-Market Fit", "Early-stage Hiring", "Startup Finance Basics",
            "Building an MVP", "Growth Experiments", "Founder Mental Health",
            "Customer Development",
        ),
        ("Startup Founder", "Venture Partner", "Startup Advisor", "Chief Operating Officer"),
        ("fundraising", "mvp", "growth", "founders"),
        ("product-management", "leadership"),
        0.7,
        (
            "first-time founders exploring an idea",
            "founders of early-stage startups",
            "founders scaling a funded company",
        ),
    ),
)
FIELDS_BY_SLUG: Final[dict[str, Field]] = {f.slug: f for f in FIELDS}

LEVELS: Final[tuple[str, ...]] = ("beginner", "intermediate", "advanced")
LEVEL_DEMAND: Final[tuple[float, ...]] = (0.45, 0.35, 0.20)

_COURSE_PHRASES: Final[dict[str, tuple[str, ...]]] = {
    "beginner": ("The Fundamentals", "First Steps", "A Gentle Introduction", "Essentials"),
    "intermediate": ("Beyond the Basics", "Hands-on Practice", "Applied Techniques",
                     "Real-world Projects"),
    "advanced": ("Advanced Patterns", "Deep Dive", "Expert Masterclass", "Operating at Scale"),
}
#: (title label, tag, how long it takes)
_FORMATS: Final[tuple[tuple[str, str, str], ...]] = (
    ("Live Workshop", "workshop", "a three-hour live session with a recorded replay"),
    ("Self-paced Course", "self-paced", "about {hours} hours of videos and exercises"),
    ("4-week Cohort", "cohort", "four weeks with a weekly live session and peer reviews"),
    ("Weekend Bootcamp", "bootcamp", "two intensive days of guided practice"),
    ("Video Series", "video", "{videos} short videos you can watch in any order"),
)
_ARTICLE_TEMPLATES: Final[dict[str, tuple[str, ...]]] = {
    "beginner": (
        "A Beginner's Guide to {topic}",
        "{topic} Explained in Plain English",
        "{n} Things I Wish I Knew Before Starting with {topic}",
        "Your First Month of {topic}",
    ),
    "intermediate": (
        "{n} Common Mistakes in {topic} and How to Avoid Them",
        "A Practical Checklist for {topic}",
        "What I Learned from a Year of {topic}",
        "{topic}: Patterns That Work in Real Teams",
    ),
    "advanced": (
        "{topic} at Scale: Lessons from the Field",
        "Rethinking {topic}: An Expert Perspective",
        "The Hard Parts of {topic}",
        "{topic} Trade-offs Senior Practitioners Debate",
    ),
}
_LEVEL_SENTENCE: Final[dict[str, str]] = {
    "beginner": "No prior experience is needed: we start from first principles and plain "
    "language.",
    "intermediate": "Expect practical exercises drawn from real projects and common pitfalls.",
    "advanced": "We go deep into edge cases, trade-offs and what changes at scale.",
}
_MENTOR_STYLES: Final[tuple[str, ...]] = (
    "Sessions are practical and built around your own goals.",
    "Expect honest feedback, concrete homework and regular check-ins.",
    "Happy to review your work and help you plan the next step of your career.",
    "Combines structured plans with open conversations about growth.",
    "Focuses on habits and decisions that compound over time.",
)
_COMPANIES: Final[tuple[str, ...]] = (
    "a fintech scale-up", "a large e-commerce company", "a healthcare start-up",
    "a global consultancy", "a public-sector digital team", "an open-source foundation",
    "a SaaS company", "a games studio", "a logistics platform", "a media company",
)
FIRST_NAMES: Final[tuple[str, ...]] = (
    "Maya", "Daniel", "Priya", "Lucas", "Amara", "Jonas", "Sofia", "Ethan", "Leila", "Marco",
    "Hannah", "Kenji", "Olivia", "Mateo", "Aisha", "Noah", "Elena", "Samuel", "Chloe", "Arjun",
    "Grace", "Tomás", "Nadia", "Oliver", "Zara", "Felix", "Ingrid", "Kwame", "Lena", "Rafael",
    "Yuki", "Isaac", "Mira", "Adrian", "Fatima", "Leo", "Clara", "Omar", "Rosa", "Victor",
)
LAST_NAMES: Final[tuple[str, ...]] = (
    "Chen", "Okafor", "Patel", "Müller", "Silva", "Johansson", "Kowalski", "Nguyen", "Haddad",
    "Rossi", "Bennett", "Tanaka", "García", "Novak", "Mensah", "Fischer", "Dubois", "Kim",
    "O'Brien", "Singh", "Larsen", "Costa", "Ibrahim", "Walker", "Moreau", "Hansen", "Yilmaz",
    "Andersson", "Reyes", "Schmidt", "Cohen", "Adeyemi", "Petrov", "Lindqvist", "Sato",
    "Murphy", "Fernandes", "Kaur", "Brennan", "Varga",
)

DEMO_START: Final = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ItemMeta:
    """Planted ground truth of an item."""

    field: str
    level: str
    topic: str
    appeal: float


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo mentee and their latent interest cluster."""

    id: str
    field: str
    level: str
    joined: datetime


@dataclass(frozen=True)
class DemoData:
    """Generated catalogue, interaction log (sorted by time) and planted ground truth."""

    items: list[Item]
    interactions: list[Interaction]
    item_meta: dict[int, ItemMeta]
    users: dict[str, DemoUser]
    start: datetime
    days: int

    @property
    def item_field(self) -> dict[int, str]:
        return {i: m.field for i, m in self.item_meta.items()}


def _slug(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


#: brand and product names that keep their capitals inside a sentence
_PROPER_NOUNS: Final[frozenset[str]] = frozenset(
    {"Django", "Python", "PostgreSQL", "PyTorch", "Figma", "Docker", "Kubernetes", "Terraform",
     "Linux", "LinkedIn"}
)


def _lower_topic(topic: str) -> str:
    """Title-case topic → in-sentence form: keeps acronyms (API, CI/CD, OKRs) and brand names."""

    def word(w: str) -> str:
        if w in _PROPER_NOUNS or ("-" not in w and any(c.isupper() for c in w[1:])):
            return w
        return "-".join(p.lower() for p in w.split("-"))

    return " ".join(word(w) for w in topic.split())


def _a(phrase: str) -> str:
    """Phrase with the right indefinite article ("an 8-minute read", "a UX designer")."""
    vowel_sound = phrase[:1].lower() in "aeio8" or phrase.startswith(("11", "18"))
    return f"{'an' if vowel_sound else 'a'} {phrase}"


def _audience(field: Field, level: str) -> str:
    return field.audiences[LEVELS.index(level)]


def _course(rng: random.Random, field: Field, level: str) -> tuple[str, str, tuple[str, ...], str]:
    topic = rng.choice(field.topics)
    others = rng.sample([t for t in field.topics if t != topic], 2)
    phrase = rng.choice(_COURSE_PHRASES[level])
    fmt, fmt_tag, duration = rng.choice(_FORMATS)
    title = f"{topic}: {phrase} ({fmt})"
    duration = duration.format(hours=rng.choice((6, 8, 10, 12, 15)), videos=rng.randint(6, 14))
    description = (
        f"{_a(fmt.lower()).capitalize()} on {_lower_topic(topic)} for "
        f"{_audience(field, level)}. {_LEVEL_SENTENCE[level]} "
        f"Along the way you practise {_lower_topic(others[0])} and {_lower_topic(others[1])} "
        f"with feedback from {_a(_lower_topic(rng.choice(field.roles)))}. "
        f"Format: {duration}."
    )
    tags = (field.slug, level, fmt_tag, _slug(topic), rng.choice(field.skills))
    return title, description, tags, topic


def _article(rng: random.Random, field: Field, level: str) -> tuple[str, str, tuple[str, ...], str]:
    topic = rng.choice(field.topics)
    other = rng.choice([t for t in field.topics if t != topic])
    title = rng.choice(_ARTICLE_TEMPLATES[level]).format(
        topic=topic, n=rng.choice((3, 5, 7, 10, 12))
    )
    minutes = rng.choice((4, 6, 8, 10, 12, 15))
    description = (
        f"{_a(f'{minutes}-minute').capitalize()} read on {_lower_topic(topic)} written for "
        f"{_audience(field, level)}. {_LEVEL_SENTENCE[level]} It closes with how "
        f"{_lower_topic(topic)} connects to {_lower_topic(other)}."
    )
    tags = (field.slug, level, "article", _slug(topic), rng.choice(field.skills))
    return title, description, tags, topic


def _mentor(
    rng: random.Random, field: Field, level: str, name: str
) -> tuple[str, str, tuple[str, ...], str]:
    role = rng.choice(field.roles)
    topics = rng.sample(field.topics, 3)
    years = rng.randint(*{"beginner": (4, 9), "intermediate": (7, 14), "advanced": (12, 25)}[level])
    first = name.split()[0]
    title = f"{name}, {role}"
    description = (
        f"{first} has {years} years of experience as {_a(_lower_topic(role))} at "
        f"{rng.choice(_COMPANIES)} and mentors {_audience(field, level)}. "
        f"Typical topics: {_lower_topic(topics[0])}, {_lower_topic(topics[1])} and "
        f"{_lower_topic(topics[2])}. {rng.choice(_MENTOR_STYLES)}"
    )
    tags = (field.slug, level, "mentor", _slug(topics[0]), rng.choice(field.skills))
    return title, description, tags, topics[0]


def generate_catalogue(
    seed: int = 0, items_per_cluster: int = 12
) -> tuple[list[Item], dict[int, ItemMeta]]:
    """``10 × 3 × items_per_cluster`` items (≈ 1/4 mentors, 1/3 courses, rest articles).

    Item ids are ``1..N`` assigned after a seeded shuffle, so ids carry no cluster information.
    """
    if items_per_cluster < 3:
        raise ValueError("items_per_cluster must be >= 3")
    rng = random.Random(seed)
    n_mentors = max(1, items_per_cluster // 4)
    n_courses = max(1, items_per_cluster // 3)
    names = [f"{f} {last}" for f in FIRST_NAMES for last in LAST_NAMES]
    rng.shuffle(names)
    titles: set[str] = set()
    drafts: list[tuple[ItemKind, str, str, tuple[str, ...], ItemMeta]] = []
    for field in FIELDS:
        for level in LEVELS:
            for n in range(items_per_cluster):
                kind: ItemKind = "article"
                if n < n_mentors:
                    kind = "mentor"
                elif n < n_mentors + n_courses:
                    kind = "course"
                for _attempt in range(200):
                    if kind == "mentor":
                        if not names:
                            raise ValueError("catalogue too large for the mentor name pool")
                        title, desc, tags, topic = _mentor(rng, field, level, names.pop())
                    elif kind == "course":
                        title, desc, tags, topic = _course(rng, field, level)
                    else:
                        title, desc, tags, topic = _article(rng, field, level)
                    if title not in titles:
                        break
                else:  # combinatorial space exhausted for this cluster
                    raise ValueError("items_per_cluster too large to keep titles unique")
                titles.add(title)
                # a few "featured" items are far more appealing: the popularity skew
                appeal = rng.lognormvariate(0.0, 0.8) * (4.0 if rng.random() < 0.04 else 1.0)
                drafts.append(
                    (kind, title, desc, tuple(dict.fromkeys(tags)),
                     ItemMeta(field.slug, level, topic, appeal))
                )
    rng.shuffle(drafts)
    items: list[Item] = []
    meta: dict[int, ItemMeta] = {}
    for item_id, (kind, title, desc, tags, m) in enumerate(drafts, start=1):
        items.append(Item(item_id, kind, title, desc, tags))
        meta[item_id] = m
    return items, meta


def _adjacent_levels(level: str) -> list[str]:
    i = LEVELS.index(level)
    return [LEVELS[j] for j in (i - 1, i + 1) if 0 <= j < len(LEVELS)]


def generate_interactions(
    items: list[Item],
    item_meta: dict[int, ItemMeta],
    seed: int = 0,
    n_users: int = 800,
    days: int = 60,
    start: datetime = DEMO_START,
) -> tuple[list[Interaction], dict[str, DemoUser]]:
    """Interaction log (sorted by timestamp) for ``n_users`` users over ``days`` days."""
    rng = random.Random(seed * 1_000_003 + 7)  # independent of the catalogue stream
    horizon = days * 86_400.0
    pools: dict[tuple[str, str], list[int]] = {}
    for item in items:
        m = item_meta[item.id]
        pools.setdefault((m.field, m.level), []).append(item.id)
    all_ids = [it.id for it in items]
    appeal = {i: item_meta[i].appeal for i in all_ids}

    def pick(pool: list[int], taken: set[int]) -> int | None:
        candidates = [i for i in pool if i not in taken]
        if not candidates:
            return None
        return rng.choices(candidates, weights=[appeal[i] for i in candidates])[0]

    events: list[tuple[float, str, int, InteractionKind]] = []
    users: dict[str, DemoUser] = {}
    field_weights = [f.demand for f in FIELDS]
    for n in range(n_users):
        user_id = f"mentee-{n + 1:04d}"
        field = rng.choices(FIELDS, weights=field_weights)[0]
        level = rng.choices(LEVELS, weights=LEVEL_DEMAND)[0]
        joined = rng.uniform(0.0, horizon * 0.85)
        users[user_id] = DemoUser(user_id, field.slug, level, start + timedelta(seconds=joined))
        n_engagements = min(60, max(3, int(rng.lognormvariate(2.3, 0.6))))
        mean_gap = (horizon - joined) / (n_engagements + 1)
        own = pools[(field.slug, level)]
        t = joined
        taken: set[int] = set()
        for _ in range(n_engagements):
            t += rng.expovariate(1.0 / mean_gap)
            if t >= horizon:
                break
            r = rng.random()
            if r < 0.68:
                pool = own
            elif r < 0.83:
                pool = pools[(field.slug, rng.choice(_adjacent_levels(level)))]
            elif r < 0.92:
                pool = pools[(rng.choice(field.related), level)]
            else:
                pool = all_ids
            item_id = pick(pool, taken) or pick(all_ids, taken)
            if item_id is None:
                break
            taken.add(item_id)
            in_cluster = item_meta[item_id].field == field.slug
            events.append((t, user_id, item_id, "view"))
            if rng.random() < (0.65 if in_cluster else 0.35):
                tc = t + rng.uniform(60, 1800)
                events.append((tc, user_id, item_id, "click"))
                if rng.random() < (0.4 if in_cluster else 0.12):
                    ta = tc + rng.uniform(3600, 3 * 86_400)
                    events.append((ta, user_id, item_id, "adopt"))
                    if rng.random() < 0.55:
                        events.append((ta + rng.uniform(3, 20) * 86_400, user_id, item_id,
                                       "complete"))
            if rng.random() < 0.08:
                # shown something off-topic and said "not for me"
                off = [i for i in all_ids if item_meta[i].field != field.slug
                       and item_meta[i].field not in field.related and i not in taken]
                if off:
                    dismissed = rng.choice(off)
                    taken.add(dismissed)
                    events.append((t + rng.uniform(1, 600), user_id, dismissed, "dismiss"))
    events = [e for e in events if e[0] < horizon]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    interactions = [
        Interaction(user_id, item_id, kind, DEFAULT_WEIGHTS[kind],
                    start + timedelta(seconds=round(ts)))
        for ts, user_id, item_id, kind in events
    ]
    return interactions, users


def generate_demo_data(
    seed: int = 0,
    n_users: int = 800,
    items_per_cluster: int = 12,
    days: int = 60,
    start: datetime = DEMO_START,
) -> DemoData:
    """Catalogue (≥ 300 items with the defaults) + interactions; deterministic for ``seed``."""
    items, meta = generate_catalogue(seed, items_per_cluster)
    interactions, users = generate_interactions(items, meta, seed, n_users, days, start)
    return DemoData(items, interactions, meta, users, start, days)
