"""deploy/: the production example environment passes `check --deploy`, gunicorn starts from
deploy/gunicorn.conf.py and answers with the security headers, and the unit files, the
compose file and the nginx site agree with the settings they depend on."""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
QUEUES = ("ingest", "embed", "train")
HOST = "oddball.example.org"


def env_example() -> dict[str, str]:
    """The KEY=value lines of deploy/.env.example, as systemd's EnvironmentFile reads them."""
    values = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture
def production_env(tmp_path: Path) -> dict[str, str]:
    """The example's production environment, with a long random SECRET_KEY, the local
    PostgreSQL and the test Redis instead of the example's hosts, and writable folders."""
    db = settings.DATABASES["default"]
    # The browser tests' conftest sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright in this
    # process; a deployment never has it (check --deploy says so), so it is not passed on.
    harness = {"DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in env_example() and k not in harness}
    env.update(env_example())
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        REDIS_URL=os.environ.get("ODDBALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/5"),
        ODDBALL_CACHE_URL=os.environ.get("ODDBALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/5"),
        ODDBALL_VAR_DIR=str(tmp_path / "var"),
        ODDBALL_MEDIA_ROOT=str(tmp_path / "media"),
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_deploy(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_reports_nothing_with_the_production_example_environment(
    production_env,
) -> None:
    done = _check_deploy(production_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_does_complain_without_the_production_settings(production_env) -> None:
    # The test above means something only if the example's values are what silence it.
    production_env.update(ODDBALL_HTTPS="0", ODDBALL_SECURE_COOKIES="", ODDBALL_HSTS_SECONDS="")
    production_env.update(ODDBALL_SSL_REDIRECT="")
    done = _check_deploy(production_env)
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Status and headers of a GET that does not follow redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.django_db
def test_gunicorn_from_the_deploy_config_answers_with_the_security_headers(
    production_env, tmp_path
) -> None:
    port = free_port()
    production_env.update(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="1")
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"],
        cwd=REPO,
        env=production_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base, https = f"http://127.0.0.1:{port}", {"Host": HOST, "X-Forwarded-Proto": "https"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, headers = get(f"{base}/healthz", https)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "gunicorn.log"
                ).read_text()
                time.sleep(0.3)
        assert status == 200
        assert headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains; preload"
        )
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"

        status, headers = get(f"{base}/accounts/login/", https)
        assert status == 200
        assert "secure" in headers["Set-Cookie"].lower()  # the CSRF cookie

        # Plain http is sent to https, except the probes of a load balancer.
        status, headers = get(f"{base}/accounts/login/", {"Host": HOST})
        assert (status, headers["Location"]) == (301, f"https://{HOST}/accounts/login/")
        assert get(f"{base}/healthz", {"Host": HOST})[0] == 200
        # A host not in ALLOWED_HOSTS gets nothing.
        assert (
            get(f"{base}/healthz", {"Host": "evil.example", "X-Forwarded-Proto": "https"})[0] == 400
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    access_log = (tmp_path / "gunicorn.log").read_text()
    assert '"GET /healthz HTTP/1.1" 200' in access_log  # the access log goes to stdout


def test_every_variable_settings_reads_is_in_the_example_with_a_comment() -> None:
    source = (REPO / "config" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z0-9_]+)"', source))
    read |= set(
        re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', (DEPLOY / "gunicorn.conf.py").read_text())
    )
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    example = env_example()
    assert sorted(read - set(example)) == []
    for i, line in enumerate(lines):
        key = line.partition("=")[0]
        if key in example and not line.startswith("#"):
            assert lines[i - 1].startswith("#"), f"{key} has no comment above it"


def test_the_systemd_units_run_web_beat_and_one_worker_per_queue() -> None:
    units = DEPLOY / "systemd"
    assert (
        "gunicorn -c deploy/gunicorn.conf.py config.wsgi"
        in (units / "oddball-web.service").read_text()
    )
    assert "celery -A config beat" in (units / "oddball-beat.service").read_text()
    for queue in QUEUES:
        text = (units / f"oddball-worker-{queue}.service").read_text()
        assert f"worker --queues {queue} " in text
        assert "EnvironmentFile=/etc/oddball/env" in text
    assert "--pool solo --concurrency 1" in (units / "oddball-worker-train.service").read_text()


def test_compose_runs_one_image_for_web_workers_and_beat_sharing_media() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yml").read_text())["services"]
    ours = {name: s for name, s in services.items() if name not in ("postgres", "redis")}
    assert {s["image"] for s in ours.values()} == {"oddball:latest"}
    workers = {name: s["command"] for name, s in ours.items() if "worker" in s["command"]}
    assert {c[c.index("--queues") + 1] for c in workers.values()} == set(QUEUES)
    # Web and every worker read and write the same media.
    for name in ["web", *workers]:
        assert "media:/var/lib/oddball/media" in ours[name]["volumes"], name
    assert sum("beat" in s["command"] for s in ours.values()) == 1
    train = services["worker-train"]["command"]
    assert train[train.index("--pool") + 1] == "solo"


def test_nginx_accepts_the_uploads_the_settings_allow_and_keeps_range_requests() -> None:
    conf = (DEPLOY / "nginx" / "oddball.conf").read_text()
    example = env_example()

    def body_limit_mb(location: str) -> int:
        block = conf.split(f"location = {location} {{", 1)[1].split("}", 1)[0]
        return int(re.search(r"client_max_body_size (\d+)m;", block).group(1))

    assert body_limit_mb("/curate/upload/") > int(example["ODDBALL_MAX_UPLOAD_MB"])
    for location in ("/similar/", "/api/v1/similar/"):
        assert body_limit_mb(location) > int(example["ODDBALL_SIMILAR_MAX_UPLOAD_MB"])
    # nginx serves byte ranges of the files it serves unless told otherwise.
    assert not re.search(r"^\s*max_ranges", conf, re.MULTILINE)
    assert "alias /var/lib/oddball/media/;" in conf
    proxy = (DEPLOY / "nginx" / "oddball_proxy.conf").read_text()
    assert "X-Forwarded-Proto $scheme" in proxy and "X-Forwarded-For" in proxy
    assert "Strict-Transport-Security" not in conf  # Django sends it
