import pytest


@pytest.fixture
def snippet_file(settings):
    folder = settings.MEDIA_ROOT / "snippets"
    folder.mkdir(parents=True)
    (folder / "x.ogg").write_bytes(bytes(range(256)) * 4)
    return "/media/snippets/x.ogg"


def test_media_is_served_whole_with_range_support_announced(client, snippet_file):
    response = client.get(snippet_file)
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == "audio/ogg"
    assert len(b"".join(response.streaming_content)) == 1024


def test_a_range_request_gets_206_and_exactly_those_bytes(client, snippet_file):
    response = client.get(snippet_file, headers={"range": "bytes=10-19"})
    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 10-19/1024"
    assert response.content == bytes(range(10, 20))
    tail = client.get(snippet_file, headers={"range": "bytes=-4"})
    assert tail.content == bytes(range(252, 256))


def test_an_unsatisfiable_range_gets_416(client, snippet_file):
    assert client.get(snippet_file, headers={"range": "bytes=5000-"}).status_code == 416


def test_paths_outside_the_media_root_are_not_found(client, snippet_file):
    assert client.get("/media/../config/settings.py").status_code == 404
    assert client.get("/media/snippets/missing.ogg").status_code == 404


@pytest.mark.parametrize("folder", ["releases/1", "models", "runs", "index"])
def test_private_media_folders_are_never_served(client, settings, folder):
    """Releases and models have permission-checked downloads; checkpoints and indexes none."""
    where = settings.MEDIA_ROOT / folder
    where.mkdir(parents=True)
    (where / "votes.csv").write_text("secret")
    assert client.get(f"/media/{folder}/votes.csv").status_code == 404
    assert client.get(f"/media/./{folder}/votes.csv").status_code == 404
