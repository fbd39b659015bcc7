"""No account name, e-mail or IP address in any release file (zip included) or in the
release API's answers."""

import re
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Judgment, TransitionRating
from annotation.releases import release_cut
from embeddings.models import Track
from tests.factories import (
    assignment_make,
    listener_make,
    transition_assignment_make,
    triplet_make,
    user_make,
)

pytestmark = pytest.mark.django_db

EMAIL = re.compile(rb"[\w.+-]+@[\w-]+(\.[\w-]+)+")
IPV4 = re.compile(rb"(?<![\d.])(\d{1,3}\.){3}\d{1,3}(?![\d.])")


def texts(root: Path) -> dict[str, bytes]:
    """Every release file's bytes, and every member of audio.zip by name."""
    out = {}
    for path in root.iterdir():
        out[path.name] = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as bundle:
                for name in bundle.namelist():
                    out[f"{path.name}:{name}"] = name.encode() + b"\n" + bundle.read(name)
    return out


def test_no_account_name_e_mail_or_address_appears_in_a_release(client):
    secrets = []
    triplet = triplet_make()
    for n in range(3):
        name, mail = f"volunteer_{n}_account", f"volunteer{n}@example.org"
        secrets += [name.encode(), mail.encode()]
        user = user_make(username=name, email=mail)
        listener = listener_make(user=user)
        Judgment.objects.create(
            assignment=assignment_make(listener, triplet),
            triplet=triplet,
            listener=listener,
            odd_slot=n % 3,
            response_ms=7000,
            listen_ms=[4000, 4000, 4000],
            language="de",
        )
        rated = transition_assignment_make(listener)
        TransitionRating.objects.create(
            assignment=rated,
            task=rated.task,
            listener=listener,
            rating=3,
            response_ms=9000,
            listen_ms=9000,
        )
    imported = listener_make(source="bliss", source_id="someone@bliss.example")
    Judgment.objects.create(triplet=triplet, listener=imported, odd_slot=1, source="bliss")
    Track.objects.filter(id=triplet.snippet_a.track_id).update(
        attribution="Music by Ann Composer <ann@composer.example>, CC0"
    )
    for snippet in (triplet.snippet_a, triplet.snippet_b, triplet.snippet_c):
        path = Path(settings.MEDIA_ROOT) / snippet.audio.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"OggS fake audio")
    curator = user_make("curator", username="curator_kim", email="kim@curators.example")
    secrets += [b"curator_kim", b"kim@curators.example", b"someone@bliss.example"]
    release = release_cut(curator, {"audio": True}, title="Private", notes="Cut for a test.")
    assert release.status == "ready", release.error
    files = texts(Path(settings.MEDIA_ROOT) / release.folder)
    assert "audio.zip:LICENCES.md" in files and len(files) >= 12
    researcher = user_make("researcher", username="rita_researcher", email="rita@lab.example")
    client.force_login(researcher)
    for url in (
        "/api/v1/releases/",
        f"/api/v1/releases/{release.number}/",
        f"/api/v1/releases/{release.number}/judgments/?page_size=1000",
    ):
        response = client.get(url, REMOTE_ADDR="203.0.113.7")
        assert response.status_code == 200
        files[url] = response.content
    assert b"Ann Composer" in files["README.md"]  # attribution kept, its address not
    for name, data in files.items():
        for secret in secrets:
            assert secret not in data, f"{secret!r} in {name}"
        assert not EMAIL.search(data), f"an e-mail address in {name}: {EMAIL.search(data)}"
        assert not IPV4.search(data), f"an IPv4 address in {name}: {IPV4.search(data)}"
