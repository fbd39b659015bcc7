"""The translation catalogues: complete, in step with the source, and served to listeners.

The pages tests need compiled catalogues; `make setup` compiles each .po into its .mo.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

REPO = Path(__file__).resolve().parents[2]
CATALOGUES = sorted(REPO.glob("locale/*/LC_MESSAGES/django.po"))
# What makemessages reads, and the flags the catalogues are generated with.
SOURCES = ["annotation", "training", "embeddings", "config", "templates", "static", "locale"]
IGNORES = ["--ignore=.venv", "--ignore=.cache", "--ignore=var", "--ignore=tests", "--ignore=bench"]
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)


def catalogue_read(path: Path) -> list[Entry]:
    """The live entries of a .po file, header (msgid "") first; obsolete `#~` ones are left out."""
    entries: list[Entry] = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
        entry, parts, current = Entry(), {}, None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry.flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif line.startswith('"') and current is not None:
                parts[current] += ast.literal_eval(line)
            elif line.strip():
                current, _, value = line.partition(" ")
                parts[current] = ast.literal_eval(value)
        if "msgid" not in parts:
            continue
        entry.msgid = parts["msgid"]
        entry.msgctxt = parts.get("msgctxt")
        entry.msgid_plural = parts.get("msgid_plural")
        entry.msgstrs = [v for k, v in sorted(parts.items()) if k.startswith("msgstr")]
        entries.append(entry)
    return entries


def test_every_configured_language_has_a_catalogue():
    translated = {code for code, _ in settings.LANGUAGES} - {settings.LANGUAGE_CODE}
    assert {path.parents[1].name for path in CATALOGUES} == translated


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parents[1].name)
def test_every_language_catalogue_is_complete(path: Path):
    entries = catalogue_read(path)
    untranslated = [e.msgid for e in entries if not e.msgstrs or not all(e.msgstrs)]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert entries
    assert untranslated == [], f"{path.relative_to(REPO)} leaves these untranslated"
    assert fuzzy == [], f'{path.relative_to(REPO)} marks these fuzzy ("" is the header)'


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parents[1].name)
def test_every_translation_keeps_the_placeholders_of_its_source(path: Path):
    # listen.js and Django fill these in by name; a lost or renamed one shows up raw.
    wrong = [
        (e.msgid, s)
        for e in catalogue_read(path)
        if e.msgid
        for s in e.msgstrs
        if sorted(PLACEHOLDER.findall(s)) != sorted(PLACEHOLDER.findall(e.msgid_plural or e.msgid))
    ]
    assert wrong == []


def test_the_catalogues_are_in_step_with_the_source(tmp_path: Path):
    for name in SOURCES:
        shutil.copytree(
            REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo")
        )
    shutil.copy(REPO / "manage.py", tmp_path)
    languages = [arg for path in CATALOGUES for arg in ("-l", path.parents[1].name)]
    run = subprocess.run(
        [sys.executable, "manage.py", "makemessages", *languages, "--no-location", *IGNORES],
        cwd=tmp_path,
        env={**os.environ, "SECRET_KEY": "test-only-not-secret"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    for path in CATALOGUES:
        committed = {e.key for e in catalogue_read(path)}
        regenerated = {e.key for e in catalogue_read(tmp_path / path.relative_to(REPO))}
        assert regenerated - committed == set(), "new strings: run `make messages`"
        assert committed - regenerated == set(), "strings gone from the source: run `make messages`"


@pytest.fixture
def german() -> Client:
    return Client(headers={"accept-language": "de"})


def assert_german(client: Client, url: str, phrase: str) -> str:
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200, url
    assert '<html lang="de">' in html, url
    assert phrase in html, url
    return html


@pytest.mark.django_db
def test_the_listening_pages_speak_german(german: Client):
    assert_german(german, "/", "Wie fühlt sich Musik für dich an?")
    assert_german(german, "/consent/", "Bevor du anfängst")
    assert german.post("/consent/", {"consent": "yes"}).status_code == 302
    assert_german(german, "/listen/instructions/", "Zuerst kommt eine Übungsrunde mit")
    listen = assert_german(german, "/listen/", "Welcher klingt am wenigsten wie die anderen")
    transitions = assert_german(german, "/listen/transitions/", "Wie nahtlos ist dieser Übergang?")
    assert "5: nahtlos, wie aus einem Stück" in transitions
    assert_german(german, "/listen/history/", "Eine Frage gilt als abgeschlossen")
    assert_german(german, "/accounts/signup/", "Ein Konto anlegen")
    assert_german(german, "/accounts/login/", "Noch kein Konto?")

    found = re.search(r'<script id="listen-strings" type="application/json">(.*?)</script>', listen)
    assert found is not None
    strings = json.loads(found.group(1))
    assert strings["locked"] == (
        "Die Antworten werden freigeschaltet, sobald jeder Ausschnitt {min} s lang gelaufen "
        "ist. Noch anzuhören: {rest}."
    )
    found = re.search(
        r'<script id="transition-strings" type="application/json">(.*?)</script>', transitions
    )
    assert found is not None
    assert json.loads(found.group(1))["unlocked"] == "Gehört: Wie nahtlos war es?"


@pytest.mark.django_db
def test_the_language_can_be_switched(client: Client):
    assert "Wie fühlt sich Musik" not in client.get("/").content.decode()
    response = client.post("/i18n/setlang/", {"language": "de", "next": "/"})
    assert response.status_code == 302
    assert response.url == "/"
    assert_german(client, "/", "Wie fühlt sich Musik für dich an?")
