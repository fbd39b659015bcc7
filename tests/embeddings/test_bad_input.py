"""Hostile and malformed audio through `import_audio` and the curator upload (issue 8).

Every case in tests/embeddings/bad_audio.py is either imported or rejected with its reason,
through both doors; afterwards nothing of a rejected file is stored: no rows, and no file
under MEDIA_ROOT that no row points to.
"""

import html
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotation.moderation import upload_name
from annotation.roles import role_group
from embeddings.models import Rendering, Snippet, Track
from embeddings.services import track_import
from tests.embeddings.bad_audio import (
    FAILED,
    IMPORTED,
    Case,
    cases,
    disk_only_cases,
    named_pipe,
)

pytestmark = pytest.mark.django_db

CASES = cases()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every case written once into one folder (a few seconds), shared by the tests."""
    folder = tmp_path_factory.mktemp("hostile")
    for case in CASES:
        case.write(folder / case.name)
    return folder


@pytest.fixture
def curator(client: Client) -> Client:
    user = get_user_model().objects.create_user("curator")  # no password: hashing one costs 0.3 s
    user.groups.add(role_group("curator"))
    client.force_login(user)
    return client


def stray_files(media: Path) -> tuple[set[str], set[str]]:
    """(files on disk that no row names, names in rows with no file), and empty folders
    count as strays too."""
    on_disk = {p.relative_to(media).as_posix() for p in media.rglob("*") if not p.is_dir()}
    empty = {p.relative_to(media).as_posix() for p in media.rglob("*") if p.is_dir()}
    empty = {d for d in empty if not any((media / d).iterdir())}
    named = set()
    for track in Track.objects.all():
        named |= {track.original.name, track.analysis.name}
    for snippet in Snippet.objects.all():
        named |= {snippet.audio.name, snippet.analysis.name}
    named |= {r.audio.name for r in Rendering.objects.all()}
    named.discard("")
    return (on_disk - named) | empty, named - on_disk


def assert_nothing_half_stored(media: Path) -> None:
    unnamed, missing = stray_files(media)
    assert not unnamed, f"files no row names: {sorted(unnamed)}"
    assert not missing, f"rows naming missing files: {sorted(missing)}"
    for track in Track.objects.all():
        assert track.snippets.exists(), f"track {track.file_name} has no snippets"


def test_there_are_at_least_twenty_hostile_cases_of_both_outcomes():
    assert len(CASES) >= 20
    assert {c.outcome for c in CASES} == {IMPORTED, FAILED}
    assert len({c.name for c in CASES}) == len(CASES)


def test_one_batch_of_hostile_files_imports_the_good_and_reports_each_bad_with_its_reason(
    written, tmp_path, settings, capsys
):
    batch = tmp_path / "batch"
    batch.mkdir()
    for case in CASES:
        (batch / case.name).write_bytes((written / case.name).read_bytes())
    extra = disk_only_cases(batch)
    pipe = named_pipe(batch)  # a folder walk skips it; named directly it must not hang

    # A folder walk takes only audio suffixes; files named directly are all tried.
    call_command("import_audio", str(batch), str(pipe), str(batch / "notes.txt"))
    out, err = capsys.readouterr()

    summary = json.loads(out.strip().splitlines()[-1])
    reported = {}
    for line in err.splitlines():
        if line.startswith("skipped "):
            path, _, reason = line.removeprefix("skipped ").partition(": ")
            reported[Path(path).name] = reason
    wrong = []
    for case in CASES:
        if case.outcome == IMPORTED:
            if not Track.objects.filter(file_name=case.name).exists():
                wrong.append(f"{case.id}: not imported ({reported.get(case.name)})")
        elif case.reason not in reported.get(case.name, ""):
            wrong.append(f"{case.id}: reason {reported.get(case.name)!r}, want {case.reason!r}")
    assert not wrong, "\n".join(wrong)
    assert reported["pipe.ogg"] == "not a regular file"
    assert "cannot read file" in reported["loop.ogg"]
    assert "cannot read file" in reported["gone.ogg"]
    latin1 = Track.objects.get(file_name="caf\ufffd-latin1.ogg")
    assert latin1.title == "caf\ufffd-latin1"
    assert Track.objects.filter(file_name="inside.ogg").exists()  # found inside folder.ogg
    imported = sum(c.outcome == IMPORTED for c in CASES) + sum(
        outcome == IMPORTED for _, _, outcome in extra
    )
    assert summary["imported"] == Track.objects.count() == imported
    assert summary["failed"] == sum(c.outcome == FAILED for c in CASES) + 3
    assert_nothing_half_stored(Path(settings.MEDIA_ROOT))
    # Valid files in odd shapes keep what they really are.
    tracks = {t.file_name: t for t in Track.objects.all()}
    assert tracks["really_flac.mp3"].format == "flac/pcm_16"
    assert tracks["really_flac.mp3"].original.name.endswith("/original.flac")
    assert tracks["voice.opus"].original.name.endswith("/original.opus")
    assert (tracks["surround.wav"].channels, tracks["rate384k.wav"].sample_rate) == (6, 384_000)
    for snippet in Snippet.objects.all():
        with (Path(settings.MEDIA_ROOT) / snippet.audio.name).open("rb") as f:
            assert f.read(4) == b"OggS"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_curator_upload_imports_or_rejects_each_hostile_file_with_its_reason(
    case: Case, written, curator, settings
):
    claimed = case.upload_name or case.name
    upload = SimpleUploadedFile(claimed, (written / case.name).read_bytes())
    response = curator.post(
        reverse("curate-upload"),
        {"audio": upload, "license": "CC0-1.0", "attribution": "Generated"},
    )
    page = html.unescape(response.content.decode())
    if case.outcome == IMPORTED:
        assert response.status_code == 302, page
        track = Track.objects.get()
        assert track.file_name == upload_name(claimed)
        assert "/" not in track.file_name and len(track.file_name) <= 200
    else:
        assert response.status_code == 400
        if case.upload_reason:
            assert case.upload_reason in page
        else:
            assert "was not imported: " in page and case.reason in page
        assert not Track.objects.exists()
    assert_nothing_half_stored(Path(settings.MEDIA_ROOT))


def test_an_upload_whose_name_is_not_utf8_is_a_bad_request_not_a_server_error(written, curator):
    # Django cannot decode the part's header, loses the part and then the body's framing:
    # MultiPartParserError, which it answers with 400 (the CSRF check meets it first).
    boundary = "hostile-boundary"
    fields = {"license": "CC0-1.0", "attribution": "Generated"}
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    body += (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="audio"; filename="caf\xe9\xff.ogg"\r\n'
        + b"Content-Type: audio/ogg\r\n\r\n"
        + (written / "traversal.ogg").read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    curator.raise_request_exception = False
    response = curator.post(
        reverse("curate-upload"), body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 400  # Django's "Bad request", before any view code
    assert not Track.objects.exists()
    assert not Track.objects.exists()


def test_an_upload_larger_than_the_limit_is_refused_before_it_is_read(written, curator, settings):
    settings.ODDBALL_MAX_UPLOAD_MB = 0
    upload = SimpleUploadedFile("fine.ogg", (written / "traversal.ogg").read_bytes())
    response = curator.post(
        reverse("curate-upload"), {"audio": upload, "license": "CC0-1.0", "attribution": "x"}
    )
    assert response.status_code == 400
    assert "larger than 0 MB" in response.content.decode()
    assert not Track.objects.exists()


@pytest.mark.parametrize(
    ("setting", "value", "file_name", "reason"),
    [
        ("ODDBALL_MAX_TRACK_S", 10, "ulaw.wav", "too long: 0:11, at most 0:10"),
        ("ODDBALL_MAX_SAMPLE_RATE", 48_000, "rate384k.wav", "above the limit of 48000 Hz"),
        ("ODDBALL_MAX_CHANNELS", 2, "surround.wav", "6 channels; at most 2 are accepted"),
        ("ODDBALL_MAX_DECODE_MB", 1, "surround.wav", "4 MB of samples, at most 1 MB"),
    ],
)
def test_each_limit_refuses_a_file_from_its_header_with_the_reason(
    setting, value, file_name, reason, written, settings
):
    setattr(settings, setting, value)
    outcome = track_import(written / file_name)
    assert outcome.status == "failed" and reason in outcome.reason
    assert not Track.objects.exists()


def test_files_written_before_a_failure_are_removed_again(written, settings):
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True)
    (media / "tracks").write_text("a file where the tracks folder should be")
    with pytest.raises(OSError):
        track_import(written / "traversal.ogg")  # snippets are written, then this fails
    assert not Track.objects.exists()
    assert sorted(p.name for p in media.rglob("*")) == ["tracks"]
