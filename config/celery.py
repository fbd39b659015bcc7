"""The Celery app. Without REDIS_URL (the embedded default) tasks run in-process.

No connection is made at import time: Celery connects lazily when a task is first sent.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("oddball")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The worker heartbeat that /readyz reads (config/heartbeat.py): connected here, where every
# worker process loads the app, and harmless elsewhere (it acts only on `worker_ready`).
import config.heartbeat  # noqa: E402, F401
