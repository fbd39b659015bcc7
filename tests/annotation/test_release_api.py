"""The release pages (/datasets/, /curate/releases/) and API (/api/v1/releases/...)."""

import pandas as pd
import pytest
from django.conf import settings

from annotation.models import AuditEntry, DatasetRelease, Judgment, Triplet
from annotation.releases import release_cut, release_pseudonym, release_start
from tests.factories import assignment_make, listener_make, triplet_make, user_make

pytestmark = pytest.mark.django_db


def votes(triplet: Triplet, answers: list[int | None]) -> list[Judgment]:
    made = []
    for odd in answers:
        listener = listener_make()
        made.append(
            Judgment.objects.create(
                assignment=assignment_make(listener, triplet),
                triplet=triplet,
                listener=listener,
                odd_slot=odd,
                response_ms=8000,
                listen_ms=[4000, 4000, 4000],
            )
        )
    return made


@pytest.fixture
def release() -> DatasetRelease:
    """Release 1: 7 votes on a train triplet (4 a, 2 b, 1 none), 3 on a test one."""
    votes(triplet_make("train"), [0, 0, 0, 0, 1, 1, None])
    votes(triplet_make("test"), [2, 2, 2])
    return release_cut(user_make("curator"), {"min_votes": 1})


@pytest.fixture
def researcher(client):
    client.force_login(user_make("researcher"))
    return client


def test_the_list_and_detail_describe_the_ready_releases(researcher, release):
    release_start(None, {})  # still building: not listed
    listed = researcher.get("/api/v1/releases/").json()
    assert [r["number"] for r in listed] == [1]
    assert listed[0]["counts"]["votes"] == 10 and listed[0]["filters"]["min_votes"] == 1
    detail = researcher.get("/api/v1/releases/1/").json()
    files = {f["name"]: f for f in detail["files"]}
    assert files["votes.parquet"]["sha256"] == next(
        f["sha256"] for f in release.files if f["name"] == "votes.parquet"
    )
    download = researcher.get(files["votes.csv"]["url"])
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    assert body == (settings.MEDIA_ROOT / release.folder / "votes.csv").read_bytes()


def test_unknown_releases_and_files_are_404_with_a_reason(researcher, release):
    for url in (
        "/api/v1/releases/2/",
        "/api/v1/releases/99999999999999999999/",
        "/api/v1/releases/1/files/secrets.txt",
        "/api/v1/releases/1/files/..%2F..%2Fsettings.py",
        "/api/v1/releases/1/judgments/?page=2&triplet=99999999999999",
    ):
        response = researcher.get(url)
        assert response.status_code in (404, 200), url
        if response.status_code == 404:
            assert response.json()["detail"], url
    assert researcher.get("/api/v1/releases/2/judgments/").status_code == 404
    assert researcher.get("/datasets/1/files/..%2Fdb.sqlite3").status_code == 404


def test_judgments_are_paginated_with_a_maximum_page_size(researcher, release):
    first = researcher.get("/api/v1/releases/1/judgments/?page_size=4").json()
    assert (first["count"], len(first["results"]), first["previous"]) == (10, 4, None)
    second = researcher.get(first["next"]).json()
    third = researcher.get(second["next"]).json()
    assert (len(second["results"]), len(third["results"]), third["next"]) == (4, 2, None)
    every = pd.read_parquet(settings.MEDIA_ROOT / release.folder / "votes.parquet")
    served = [r["listener"] for r in first["results"] + second["results"] + third["results"]]
    assert served == list(every["listener"])
    too_big = researcher.get("/api/v1/releases/1/judgments/?page_size=5000")
    assert too_big.status_code == 400 and "page_size" in too_big.json()


def test_judgments_filter_by_triplet_listener_split_and_answer(researcher, release):
    every = pd.read_parquet(settings.MEDIA_ROOT / release.folder / "votes.parquet")
    train = int(every[every["split"] == "train"]["triplet_id"].iloc[0])

    def count(query: str) -> int:
        response = researcher.get(f"/api/v1/releases/1/judgments/?{query}")
        assert response.status_code == 200, response.content
        return response.json()["count"]

    assert count(f"triplet={train}") == 7
    assert count("split=test") == 3
    assert count("answer=none") == 1
    assert count(f"triplet={train}&answer=a") == 4
    someone = every["listener"].iloc[0]
    results = researcher.get(f"/api/v1/releases/1/judgments/?listener={someone}").json()
    assert [r["listener"] for r in results["results"]] == [someone]


@pytest.mark.parametrize(
    "query", ["page=0", "page=x", "page_size=0", "split=holdout", "answer=d", "triplet=-1"]
)
def test_bad_judgment_queries_get_a_400_with_the_reason(researcher, release, query):
    response = researcher.get(f"/api/v1/releases/1/judgments/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_curators_and_listeners_cannot_use_the_release_api(client, release):
    assert client.get("/api/v1/releases/").status_code == 401
    client.force_login(user_make("curator"))
    assert client.get("/api/v1/releases/1/").status_code == 403
    assert client.get("/datasets/").status_code == 403


def test_the_datasets_page_lists_ready_releases_with_datasheet_and_links(researcher, release):
    release_start(None, {}, title="unfinished")
    page = researcher.get("/datasets/").content.decode()
    assert "Release 1" in page and "unfinished" not in page
    assert "/datasets/1/files/votes.parquet" in page
    assert "What was asked" in page  # the datasheet, escaped in a <pre>
    one = researcher.get("/datasets/1/").content.decode()
    assert next(f["sha256"] for f in release.files if f["name"] == "README.md") in one
    assert researcher.get("/datasets/2/").status_code == 404


def test_a_datasheet_cannot_inject_markup_into_the_page(researcher):
    votes(triplet_make(), [0])
    release_cut(None, {}, title="t", notes="<script>alert(1)</script>")
    page = researcher.get("/datasets/1/").content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_a_curator_cuts_a_release_from_the_page_in_a_task(
    client, django_capture_on_commit_callbacks
):
    votes(triplet_make(), [0, 0, 1])
    curator = user_make("curator")
    client.force_login(curator)
    form = {"min_votes": "2", "min_reliability": "", "title": "From the page", "notes": "n"}
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        response = client.post("/curate/releases/", form)
    assert response.status_code == 302 and len(enqueued) == 1
    release = DatasetRelease.objects.get()
    assert release.status == DatasetRelease.Status.BUILDING
    page = client.get("/curate/releases/").content.decode()
    assert "Being cut" in page and 'http-equiv="refresh"' in page
    enqueued[0]()  # the task, run in-process as without a broker
    release.refresh_from_db()
    assert release.status == DatasetRelease.Status.READY and release.counts["votes"] == 3
    assert AuditEntry.objects.filter(target_type="release", actor=curator).count() == 1
    page = client.get("/curate/releases/").content.decode()
    assert "From the page" in page and "3 votes" in page


def test_the_cut_form_rejects_bad_filters_with_a_400(client):
    client.force_login(user_make("curator"))
    response = client.post("/curate/releases/", {"min_votes": "-2", "min_reliability": "7"})
    assert response.status_code == 400
    assert not DatasetRelease.objects.exists()


def test_the_api_reads_exactly_what_the_release_holds_not_the_database(researcher, release):
    listener = Judgment.objects.first().listener
    Judgment.objects.update(status=Judgment.Status.REJECTED)  # after the cut
    names = researcher.get("/api/v1/releases/1/judgments/?page_size=100").json()
    assert names["count"] == 10
    assert release_pseudonym(release.salt, listener.id) in {r["listener"] for r in names["results"]}
