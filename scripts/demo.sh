#!/usr/bin/env bash
# make demo: the embedded default (SQLite, in-process tasks, media under ./var) with demo music,
# embeddings and tasks, a curator login, and the site at http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var
# A real secret, generated once for this checkout; never committed (var/ is ignored).
[ -s var/secret_key ] || $PY -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
export SECRET_KEY="$(cat var/secret_key)" DEBUG="${DEBUG:-1}"
unset REDIS_URL DATABASE_URL

if [ -n "${ODDBALL_DEMO_MUSIC:-}" ]; then
  music="$ODDBALL_DEMO_MUSIC"
elif [ -d ../shared/corpus ]; then
  music=../shared/corpus
else
  music=var/demo_music
  [ -f var/demo_music/MANIFEST.csv ] || $PY -c "from pathlib import Path; from embeddings.demo_music import generate; generate(Path('var/demo_music'))"
fi

$PY manage.py migrate --noinput
echo "importing demo music from $music"
$PY manage.py import_audio "$music"
$PY manage.py embed
$PY manage.py make_tasks --transitions 60
$PY manage.py demo_curator
exec $PY manage.py runserver 127.0.0.1:8000
