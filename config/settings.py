"""Oddball settings: one module, every value from the environment through typed helpers.

Defaults are the embedded ones (SQLite, in-process tasks, media under ./var) and safe ones
(DEBUG off, no wildcard hosts). Every variable is listed in deploy/.env.example.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if not value:
        return default
    return value.lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = env_str(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    return int(value) if value else default


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Only ever used with DEBUG on; `make demo` generates a real key anyway.
    SECRET_KEY = "insecure-debug-only-key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "embeddings",
    "annotation",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

VAR_DIR = Path(env_str("ODDBALL_VAR_DIR", str(BASE_DIR / "var")))
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'oddball.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A persistent connection broken by a database restart is replaced before use,
        # instead of failing the first request after the restart.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several writers (web + in-process tasks) share one file: wait instead of failing.
    # WAL lets readers go on while one writes, and NORMAL syncs only at checkpoints.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
# Every language here is complete: tests/annotation/test_i18n.py checks the catalogues.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve static/ straight from the source folders too, so the demo needs no collectstatic.
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("ODDBALL_MEDIA_ROOT", str(VAR_DIR / "media")))
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/listen/"
LOGOUT_REDIRECT_URL = "/"

# Celery: the broker is a doorbell; without REDIS_URL tasks run in-process (embedded default).
REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "embed"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message a lost worker held is handed out again after this long (Redis transport).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("ODDBALL_VISIBILITY_S", 3600)}
# Run beat as its own process: `celery -A config beat` (deploy/ has the unit).
CELERY_BEAT_SCHEDULE = {
    "retrain-if-due": {"task": "training.retrain_if_due", "schedule": 60.0},
    "training-sweep": {"task": "training.sweep", "schedule": 60.0},
    "rendering-sweep": {"task": "annotation.sweep_renderings", "schedule": 60.0},
    "release-sweep": {"task": "annotation.sweep_releases", "schedule": 60.0},
    "quality-update": {
        "task": "annotation.quality_update",
        "schedule": float(env_int("ODDBALL_QUALITY_EVERY_S", 300)),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.auth.ListenerTokenAuthentication",
        "annotation.auth.ListenerCookieAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Abuse limits (annotation/limits.py), as "count/period" (s, min, hour, day); an empty
    # value turns one off. Serving and answering are limited per listener and per address;
    # an address may be a classroom or an office behind one NAT, hence the larger budgets.
    "DEFAULT_THROTTLE_RATES": {
        "serve-listener": env_str("ODDBALL_RATE_SERVE_LISTENER", "60/min") or None,
        "serve-address": env_str("ODDBALL_RATE_SERVE_ADDRESS", "600/min") or None,
        "answer-listener": env_str("ODDBALL_RATE_ANSWER_LISTENER", "30/min") or None,
        "answer-address": env_str("ODDBALL_RATE_ANSWER_ADDRESS", "300/min") or None,
        "listener-create": env_str("ODDBALL_RATE_LISTENER_CREATE", "100/hour") or None,
        "transition-render": env_str("ODDBALL_RATE_TRANSITION_RENDER", "60/min") or None,
    },
    # Proxies in front of Django that append to X-Forwarded-For (nginx: 1). 0 trusts only
    # the socket's address, so a client cannot pick its own address by sending the header.
    "NUM_PROXIES": env_int("ODDBALL_NUM_PROXIES", 0),
    # `{"detail", "code"}` on every API error (annotation/api_errors.py).
    "EXCEPTION_HANDLER": "annotation.api_errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Oddball API",
    "VERSION": "1",
    "DESCRIPTION": (
        "The listening API (a listener token, `Authorization: Listener <token>`, or the "
        "listening page's cookie) and the research API (a researcher token from /research/, "
        '`Authorization: Bearer odb_<secret>`). Errors are JSON `{"detail", "code"}`.'
    ),
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files are vendored (static/vendor/), so /api/docs/ loads nothing from a CDN.
    "SWAGGER_UI_DIST": STATIC_URL + "vendor/swagger-ui-5.35.0",
    "SWAGGER_UI_FAVICON_HREF": STATIC_URL + "vendor/swagger-ui-5.35.0/favicon-32x32.png",
    # What Django's path converters really match, so no documented value misses the route.
    "PATH_CONVERTER_OVERRIDES": {
        "int": {"type": "integer", "minimum": 0},
        "str": {"type": "string", "pattern": "^[^/]+$"},
    },
}

# Oddball's own knobs.
ODDBALL_BEATS_CHECKPOINT = env_str("ODDBALL_BEATS_CHECKPOINT")
ODDBALL_ASSIGNMENT_TTL_S = env_int("ODDBALL_ASSIGNMENT_TTL_S", 15 * 60)
ODDBALL_MIN_LISTEN_S = float(env_str("ODDBALL_MIN_LISTEN_S", "4"))
# Retraining: beat starts a run once this many new accepted judgments have arrived; a run
# whose worker is silent this long is sent again (it resumes from its checkpoint).
ODDBALL_RETRAIN_EVERY = env_int("ODDBALL_RETRAIN_EVERY", 200)
ODDBALL_TRAINING_STALE_S = env_int("ODDBALL_TRAINING_STALE_S", 300)
# Promote a new version automatically when it earns it (training.services.promotion_earned).
ODDBALL_AUTO_PROMOTE = env_bool("ODDBALL_AUTO_PROMOTE", True)
# A listener sees how others answered a triplet once this many others have answered it.
ODDBALL_FINISHED_VOTES = env_int("ODDBALL_FINISHED_VOTES", 3)
# Quality control (annotation/quality.py): repeats served for self-consistency, the
# reliability prior, and the thresholds at which listeners and judgments are flagged.
ODDBALL_QUALITY_REPEAT_SHARE = float(env_str("ODDBALL_QUALITY_REPEAT_SHARE", "0.05"))
ODDBALL_QUALITY_REPEAT_AFTER = env_int("ODDBALL_QUALITY_REPEAT_AFTER", 10)
ODDBALL_QUALITY_PRIOR_ACCURACY = float(env_str("ODDBALL_QUALITY_PRIOR_ACCURACY", "0.5"))
ODDBALL_QUALITY_PRIOR_STRENGTH = float(env_str("ODDBALL_QUALITY_PRIOR_STRENGTH", "20"))
ODDBALL_QUALITY_GOOD_ACCURACY = float(env_str("ODDBALL_QUALITY_GOOD_ACCURACY", "0.7"))
ODDBALL_QUALITY_MIN_RELIABILITY = float(env_str("ODDBALL_QUALITY_MIN_RELIABILITY", "0.25"))
ODDBALL_QUALITY_MIN_CHECKS = env_int("ODDBALL_QUALITY_MIN_CHECKS", 15)
ODDBALL_QUALITY_MAX_FAST_SHARE = float(env_str("ODDBALL_QUALITY_MAX_FAST_SHARE", "0.5"))
ODDBALL_QUALITY_MAX_POSITION_SHARE = float(env_str("ODDBALL_QUALITY_MAX_POSITION_SHARE", "0.8"))
ODDBALL_QUALITY_MIN_ANSWERS = env_int("ODDBALL_QUALITY_MIN_ANSWERS", 10)
# A listener whose last ODDBALL_SLOW_STREAK answers each came faster than the music plays
# (annotation/limits.py) is served nothing new for ODDBALL_SLOW_S, and flagged.
ODDBALL_SLOW_STREAK = env_int("ODDBALL_SLOW_STREAK", 3)
ODDBALL_SLOW_S = env_int("ODDBALL_SLOW_S", 60)
# Transitions: tracks are cut into clips of this length overlapping by this much; a clip's
# opening and ending (what transition models read) last ODDBALL_CLIP_EDGE_S (3-5 s).
ODDBALL_CLIP_S = float(env_str("ODDBALL_CLIP_S", "25"))
ODDBALL_CLIP_OVERLAP_S = float(env_str("ODDBALL_CLIP_OVERLAP_S", "5"))
ODDBALL_CLIP_EDGE_S = float(env_str("ODDBALL_CLIP_EDGE_S", "4"))
# New transition tasks: share proposed by the transition model, random controls, and true
# continuations (checks that should sound seamless), as kind=share pairs.
ODDBALL_TRANSITION_SHARES = env_str("ODDBALL_TRANSITION_SHARES", "model=0.5,random=0.3,true=0.2")
# Imported and uploaded tracks wait for a curator's approval before they are served.
ODDBALL_REQUIRE_APPROVAL = env_bool("ODDBALL_REQUIRE_APPROVAL", False)
# The embedded default serves media from Django; behind nginx turn this off.
ODDBALL_SERVE_MEDIA = env_bool("ODDBALL_SERVE_MEDIA", True)
# -- dataset releases --
# -- researchers and the research API --
# Research API requests per user and period (all of a researcher's tokens share it).
ODDBALL_RATE_RESEARCH = env_str("ODDBALL_RATE_RESEARCH", "1000/hour")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["research"] = ODDBALL_RATE_RESEARCH or None
# -- imported judgments --
# Judgments brought in by import_judgments (source other than "oddball") are training and
# evaluation votes only when this is on: they were collected elsewhere, on other excerpts,
# without this site's quality control. Releases include them by their own source filter.
ODDBALL_TRAIN_IMPORTED = env_bool("ODDBALL_TRAIN_IMPORTED", False)
# -- similar tracks --
# /similar/ and /api/v1/similar/: the largest clip accepted for comparison (MB), and the
# rate of similar-track queries per client (scope "similar"; empty turns it off).
ODDBALL_SIMILAR_MAX_UPLOAD_MB = env_int("ODDBALL_SIMILAR_MAX_UPLOAD_MB", 20)
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["similar"] = (
    env_str("ODDBALL_RATE_SIMILAR", "30/min") or None
)
# -- production security and health (issue 8) --
# A database outage (e.g. PostgreSQL restarting) answers 503 with Retry-After, not a 500.
MIDDLEWARE.append("config.db_errors.DatabaseUnavailableMiddleware")
# Behind TLS (nginx in front), ODDBALL_HTTPS=1 turns on secure cookies, the HTTPS redirect
# and trust in the proxy's X-Forwarded-Proto. Off by default: `make demo` and the test
# client speak plain http on 127.0.0.1, where secure cookies would never come back.
ODDBALL_HTTPS = env_bool("ODDBALL_HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("ODDBALL_SECURE_COOKIES", ODDBALL_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("ODDBALL_SSL_REDIRECT", ODDBALL_HTTPS)
# Load balancers probe over plain http from inside the network: never redirect them.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
if env_bool("ODDBALL_BEHIND_PROXY", ODDBALL_HTTPS):
    # nginx sets this header itself (deploy/nginx/oddball.conf), so a client cannot forge it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS is Django's to send (nginx does not), once the site is known to stay on HTTPS.
SECURE_HSTS_SECONDS = env_int("ODDBALL_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ODDBALL_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("ODDBALL_HSTS_PRELOAD", False)
# Django's defaults, written down because check --deploy and tests/test_deploy.py rely on them.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# /readyz (config/health.py): a worker counts as alive when it wrote a heartbeat for each of
# these queues (config/heartbeat.py, every ODDBALL_HEARTBEAT_EVERY_S) within the max age.
ODDBALL_HEARTBEAT_QUEUES = env_list("ODDBALL_HEARTBEAT_QUEUES", ["ingest", "embed", "train"])
ODDBALL_HEARTBEAT_EVERY_S = env_int("ODDBALL_HEARTBEAT_EVERY_S", 30)
ODDBALL_HEARTBEAT_MAX_AGE_S = env_int("ODDBALL_HEARTBEAT_MAX_AGE_S", 120)
# Media on S3-compatible storage (README "Deploy"): only when a bucket is named, so
# django-storages[s3] is needed (and imported) only by deployments that configure it.
ODDBALL_S3_BUCKET = env_str("ODDBALL_S3_BUCKET")
if ODDBALL_S3_BUCKET:
    STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": ODDBALL_S3_BUCKET,
                "endpoint_url": env_str("ODDBALL_S3_ENDPOINT_URL") or None,
                "region_name": env_str("ODDBALL_S3_REGION") or None,
                "access_key": env_str("ODDBALL_S3_ACCESS_KEY_ID") or None,
                "secret_key": env_str("ODDBALL_S3_SECRET_ACCESS_KEY") or None,
                "custom_domain": env_str("ODDBALL_S3_CUSTOM_DOMAIN") or None,
                # Signed URLs unless the bucket is public behind a custom domain.
                "querystring_auth": not env_str("ODDBALL_S3_CUSTOM_DOMAIN"),
                "file_overwrite": False,
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
# -- limits on uploads and requests (issue 8) --
# Imported and uploaded audio (embeddings.services.track_import): files longer (s), faster
# (Hz) or wider (channels) than these are refused from their header, before decoding; and
# no file is decoded into more than ODDBALL_MAX_DECODE_MB of float samples at once.
ODDBALL_MAX_TRACK_S = env_int("ODDBALL_MAX_TRACK_S", 30 * 60)
ODDBALL_MAX_SAMPLE_RATE = env_int("ODDBALL_MAX_SAMPLE_RATE", 384_000)
ODDBALL_MAX_CHANNELS = env_int("ODDBALL_MAX_CHANNELS", 8)
ODDBALL_MAX_DECODE_MB = env_int("ODDBALL_MAX_DECODE_MB", 1024)
# Request bodies Django reads into memory (forms, JSON); uploaded files go to disk above
# FILE_UPLOAD_MAX_MEMORY_SIZE. The largest upload accepted is the larger of the curator
# upload (ODDBALL_MAX_UPLOAD_MB) and /similar/'s (ODDBALL_SIMILAR_MAX_UPLOAD_MB); nginx's
# client_max_body_size (deploy/nginx/oddball.conf) must be at least that.
ODDBALL_MAX_UPLOAD_MB = env_int("ODDBALL_MAX_UPLOAD_MB", 200)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ODDBALL_MAX_BODY_KB", 2560) * 1024  # bytes, not files
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int("ODDBALL_MAX_FIELDS", 1000)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # bytes (Django's default); larger files spool to disk
# Rate-limit counters live in Django's cache. The default (memory) is per process, so with
# several gunicorn processes or hosts each counts alone; point this at a Redis database of
# its own (never the broker's: cache.clear() empties the whole database) to share them.
ODDBALL_CACHE_URL = env_str("ODDBALL_CACHE_URL")
if ODDBALL_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ODDBALL_CACHE_URL,
        }
    }
# -- load benchmark (issue 8) --
# /bench/bare/ (config/bench_views.py) for bench/load.py only; never on in a deployment.
ODDBALL_BENCH_VIEWS = env_bool("ODDBALL_BENCH_VIEWS", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One line per record on stdout: systemd's journal and docker logs collect it.
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "line",
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "faiss.loader": {"level": "WARNING"},  # it announces every optional CPU build it skips
    },
}
