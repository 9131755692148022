"""The one settings file. Everything that differs between machines comes from
the environment (see `.env.example`); the defaults are for development and
need no server: SQLite, a file cache and a SQLite broker file, all in the
data folder. With DEBUG off the project refuses to start without a
secret key, allowed hosts and a database URL.
"""

import math
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")

if DEBUG:
    SECRET_KEY = SECRET_KEY or "development-only-key-never-use-in-production-0123456789abcdef"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "testserver"]
else:
    missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("DATABASE_URL", DATABASE_URL),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"DEBUG is off, so these must be set in the environment: {', '.join(missing)}"
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "common",
    "experiments",
    "rollout",
    "recommendations",
    "conversations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "rollout.middleware.RequestMetricsMiddleware",
    # Last: turns django-axes' lock-out decision into the login page's answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database ---------------------------------------------------------------------------
# Persistent connections: a view doing one PostgreSQL query serves ~16x more
# requests per second with CONN_MAX_AGE=600 than with 0 on this kind of machine.
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("CONN_MAX_AGE", 600),
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # WAL and immediate transactions let the web process and the worker
            # write to the same file without "database is locked" errors.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not memory, so that a worker process started by a test
            # sees the test database.
            "TEST": {"NAME": str(DATA_DIR / "test_db.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache ------------------------------------------------------------------------------
# All processes of a set-up share one cache: Redis in production, files in
# DATA_DIR/cache on the embedded default. Configuration read on every request is
# published to it as its change commits, and each process keeps its own copy for
# at most 1 s (common.tiered_cache). So on both set-ups a change committed in any
# process is seen by every other within 1 s (counted from the publication, a few
# milliseconds after the commit; tests/integration/test_config_propagation.py).
if REDIS_URL:
    # Redis is a cache, not a single point of failure: while it does not answer,
    # every cache operation falls back (a miss, a dropped write; logged, and
    # counted in ion_cache_fallbacks_total) and requests are served from the
    # in-process copies and the database (common.resilient_cache). The socket
    # timeouts bound what a hung Redis costs a request: a cache round trip takes
    # well under a millisecond, and after a failure the backend waits a second
    # before trying again, so at most one request per process and second pays
    # them (an assignment answers in ≈ 5 ms, its p99 ≈ 8 ms; bench/README.md).
    CACHES = {
        "default": {
            "BACKEND": "common.resilient_cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "ion"),
            "TIMEOUT": 300,
            "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.25},
        }
    }
else:
    # `make run` serves the web and runs the worker in separate processes, so a
    # per-process cache (locmem) kept a rolled-back canary routed until its copy
    # expired. Files need no server and no table, and won over Django's database
    # cache on the SQLite file by measurement (bench/bench_embedded_cache.py): a
    # routed request costs the same as on locmem; reading the shared copy costs
    # ≈ 0.07 ms against ≈ 4 ms for a request that must first open its SQLite
    # connection; a write never waits for the worker's write lock.
    # Weak points: one machine only, on a local disk (a write is a temporary file
    # renamed over the entry, atomic within one local filesystem); add/incr are
    # not atomic across processes (read, then write: the API rate limits, the one
    # counter kept here, can admit somewhat more than their rate); every write
    # lists the folder, and beyond MAX_ENTRIES (300) it deletes a random third
    # of the entries (an evicted configuration is read again from
    # the database); values are pickled, so the folder must be as private as the
    # SQLite file.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "ion"),
            "TIMEOUT": 300,
        }
    }

# Celery -----------------------------------------------------------------------------
# Time limits, and from them the redelivery of a task lost with its worker, in
# one place. Every task stops at CELERY_TASK_TIME_LIMIT except the training of
# the recommenders (recommendations.tasks), which has its own, longer limit: a
# million interactions train in ≈ 17 s on 2 cores (bench/README.md), so 600 s
# leaves room for a catalogue many times larger.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
TRAINING_TASK_TIME_LIMIT = env_int("TRAINING_TASK_TIME_LIMIT", 600)
TRAINING_TASK_SOFT_TIME_LIMIT = env_int("TRAINING_TASK_SOFT_TIME_LIMIT", 540)
if not 0 < CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_TASK_SOFT_TIME_LIMIT must be above 0 and below CELERY_TASK_TIME_LIMIT"
    )
if not 0 < TRAINING_TASK_SOFT_TIME_LIMIT < TRAINING_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "TRAINING_TASK_SOFT_TIME_LIMIT must be above 0 and below TRAINING_TASK_TIME_LIMIT"
    )
LONGEST_TASK_TIME_LIMIT = max(CELERY_TASK_TIME_LIMIT, TRAINING_TASK_TIME_LIMIT)
# Redis keeps a delivered task unacknowledged (tasks ack late, below) and hands
# it out again once it has been unacknowledged for the visibility timeout: a
# task whose worker was killed runs again. Just above the longest hard time
# limit (10 %, at least 1 s): a task still running is never handed out twice,
# and a lost one runs again within ≈ 11 minutes, not Redis's default hour.
# kombu looks for such tasks every `unacked_restore_interval` seconds (on
# every look, with the throttle at 1), at worker start and then periodically.
BROKER_VISIBILITY_TIMEOUT = LONGEST_TASK_TIME_LIMIT + max(
    1, math.ceil(LONGEST_TASK_TIME_LIMIT / 10)
)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT,
        "unacked_restore_interval": min(10, max(1, BROKER_VISIBILITY_TIMEOUT // 10)),
        "unacked_restore_throttle": 1,
    }
else:
    # The embedded default's broker needs no server: kombu's SQLAlchemy transport
    # on a SQLite file of its own (not the app's database, so that the worker's
    # polling never queues behind the app's write lock). A message is a row,
    # written and claimed in a transaction, so a consumer never meets a
    # half-written message. kombu's filesystem transport, used before, writes a
    # message file in place while the consumer moves and reads files without a
    # lock: under load the worker read one before it was complete and died of a
    # JSONDecodeError. This one publishes ≈ 150 messages/s on this machine
    # against the filesystem's thousands (bench/bench_embedded_broker.py), far
    # above the embedded default's < 1 task/s (bench/soak_embedded.py). It
    # never redelivers: a message handed to a worker that is then killed is
    # lost (config/embedded_broker.py).
    CELERY_BROKER_URL = f"sqla+sqlite:///{DATA_DIR / 'broker.sqlite3'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Web, worker and beat write the file at once: wait for its lock rather
        # than fail a publish with "database is locked".
        "connect_args": {"timeout": 20},
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Each process pushes its request-metric tally at least once a second from a
# small thread, so an idle process does not hold its last requests back (off
# in the test process, whose tests push explicitly).
REQUEST_METRICS_IDLE_PUSH = env_bool("REQUEST_METRICS_IDLE_PUSH", True)
# The worker's own Prometheus exporter (0: none); see README "Monitoring".
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDRESS = env_str("WORKER_METRICS_ADDRESS", "127.0.0.1")
# Our tasks are safe to run twice (they claim work with conditional updates or
# write through natural keys; tests/reliability/test_worker_killed.py), so a
# task is acknowledged only after it ran and is redelivered if a worker dies
# (on Redis; the embedded broker does not redeliver, see above).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# Auth and API -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login lock-out (django-axes): after LOGIN_FAILURE_LIMIT failed logins for one
# username, or from one client address, every login of that username or from
# that address is refused, the right password too, until LOGIN_COOLOFF_MINUTES
# after the last attempt (a failure during the lock-out starts the cool-off
# again). The failures are rows in the database (axes' database handler): shared
# by every process on both set-ups, where the embedded file cache could not
# count atomically. A success does not reset the counts (AXES_RESET_ON_SUCCESS
# off), so an attacker cannot clear an address's failures by logging in to an
# account of their own in between.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "common.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "common.login.locked_out"
# Reverse proxies in front of the app that append to X-Forwarded-For: the client
# address of the API rate limits and the login lock-out (common.throttling).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Request bodies: the contract's largest batch, 10 000 events with 200-character
# event ids and 200-character unit ids, is ≈ 5.1 MB of JSON, above Django's
# 2.5 MiB default; 8 MiB leaves room for it. A larger body answers a JSON 413
# that names this limit (common.api.too_large_body).
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 2**20

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.auth.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    # Strict, depth-bounded JSON (common.validation.parse_json); batch endpoints
    # use common.api.LenientJSONParser to refuse a NaN per item instead.
    "DEFAULT_PARSER_CLASSES": [
        "common.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # `?format=` belongs to the report endpoint (md|csv|json), not to content negotiation.
    "URL_FORMAT_OVERRIDE": None,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Rate limits (common.throttling): per token or logged-in user, and per client
    # address for anonymous requests; 429 with Retry-After over the limit. The
    # front end's one token carries every mentee's v2 requests, so its rate must
    # stay above the product's peak; the lean assignment endpoint has its own.
    "DEFAULT_THROTTLE_CLASSES": [
        "common.throttling.TokenRateThrottle",
        "common.throttling.AnonymousRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api": env_rate("API_THROTTLE_RATE", "60000/min"),
        "anon": env_rate("API_ANON_THROTTLE_RATE", "600/min"),
        "assignments": env_rate("ASSIGNMENT_THROTTLE_RATE", "600000/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ion-mentoring rollout & experiment platform",
    "DESCRIPTION": (
        "REST contract v1 (experiments, assignments, events, rollouts) and the v2 "
        "feature API of ion-mentoring. Authenticate with `Authorization: Token <key>`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from the sidecar package: the docs render offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several components have a field called "kind"; name each enum after its owner.
    "ENUM_NAME_OVERRIDES": {
        "MetricKindEnum": "experiments.models.Metric.Kind",
        "UnitAggregationEnum": "experiments.models.Metric.UnitAggregation",
        "ContentItemKindEnum": "recommendations.models.ContentItem.Kind",
        "AuditActionEnum": "common.models.AuditAction",
        "AuditObjectTypeEnum": "common.models.AuditEntry.ObjectType",
    },
}

# Internationalisation ---------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at every start when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "common.staticfinders.PlotlyJsFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# Email and notifications ------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "platform@ion-mentoring.invalid")

# Security (production) --------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and scrapers talk plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Logging ----------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes.apps": {"level": "WARNING"},  # its start-up banner, at every command
    },
}

# Conversation responder -------------------------------------------------------------
# An OpenAI-compatible chat-completions backend; unset: the offline knowledge-base mentor.
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL", "gpt-4o-mini")
LLM_TIMEOUT_SECONDS = env_int("LLM_TIMEOUT_SECONDS", 10)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 2)
LLM_BACKOFF_SECONDS = float(env_str("LLM_BACKOFF_SECONDS", "0.5"))

# Platform ---------------------------------------------------------------------------
HEARTBEAT_INTERVAL = timedelta(seconds=env_int("HEARTBEAT_INTERVAL_SECONDS", 30))
