import json

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Judgment
from annotation.services import triplets_make
from embeddings.models import Snippet
from embeddings.services import MEL_STATS_SPACE, embeddings_store
from tests.factories import track_make


def crowd_ready(n_tracks: int = 6) -> None:
    """Tracks with mel-stats-shaped vectors and triplets: what the crowd needs, no audio."""
    for _ in range(n_tracks):
        track_make("train", snippets=3)
    rng = np.random.default_rng(0)
    ids = Snippet.objects.values_list("id", flat=True)
    embeddings_store(MEL_STATS_SPACE, {i: rng.normal(size=142).astype(np.float32) for i in ids})
    triplets_make(40, gold_share=0.1, seed=0)


def summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_the_crowd_answers_a_running_server_over_http(live_server, capsys, settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    crowd_ready()
    call_command(
        "simulate_crowd", "--listeners", "4", "--judgments", "30", "--url", live_server.url
    )
    result = summary(capsys)
    assert result["url"] == live_server.url
    assert result["judgments"] == Judgment.objects.count() == 30
    assert result["errors"] == 0


@pytest.mark.django_db
def test_spammers_answer_without_listening(capsys):
    crowd_ready()
    call_command("simulate_crowd", "--listeners", "5", "--judgments", "60", "--spammers", "0.4")
    result = summary(capsys)
    assert result["spammers"] == 2
    quick = [j for j in Judgment.objects.all() if max(j.listen_ms) < 4000]
    assert quick, "spammers should answer before hearing the snippets out"


@pytest.mark.django_db
def test_without_vectors_the_crowd_explains_what_to_run():
    with pytest.raises(CommandError, match="embed"):
        call_command("simulate_crowd", "--listeners", "2", "--judgments", "5")
