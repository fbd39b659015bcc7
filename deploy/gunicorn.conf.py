"""gunicorn settings for Oddball: `gunicorn -c deploy/gunicorn.conf.py config.wsgi`.

Values come from the environment (deploy/.env.example) so one file fits every host.
Requests mostly wait on PostgreSQL, so each worker process runs a few threads.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
worker_class = "gthread"
# A request silent this long is stuck: its worker is restarted. Uploads run in the worker
# after nginx has buffered the whole body, so this need not cover a slow client.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 60)
graceful_timeout = 30  # s for in-flight requests on restart (systemctl reload: HUP)
keepalive = 5  # s; nginx keeps upstream connections open (keepalive in oddball.conf)
# Recycle workers now and then so a slow leak in a native library cannot grow forever.
max_requests = 2000
max_requests_jitter = 200
# gunicorn 27 opens a control socket by default; nothing here uses it (same as the CLI's
# --no-control-socket).
control_socket_disable = True
accesslog = "-"  # stdout: the journal or `docker compose logs` keeps it
errorlog = "-"
# nginx is the only client: trust its X-Forwarded-* (it sets them) from loopback and the
# compose network's addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"
proc_name = "oddball-web"
