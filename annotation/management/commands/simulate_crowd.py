"""python manage.py simulate_crowd : simulated listeners answer triplets and rate transitions
through the real API, then runs quality control once and reports how many spammers it flagged.

A tool for demos, tests and benchmarks, never a source of real data. Answers come from a
hidden taste over each snippet's mel-stats vector, ratings from a hidden rule of smoothness
over the mel-stats vectors of the clip edges that meet at a rendering's seam and the
rendering's tempo and gains (annotation/crowd.py). The simulator looks these up in this
installation's database, so --url must point at a server that shares it. Without --url the
requests go through Django in-process (same URLs, views and database).
"""

import json
import time

import numpy as np
import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Avg
from django.test import Client, override_settings
from tqdm import tqdm

from annotation.crowd import (
    CrowdConfig,
    Seam,
    SimulatedListener,
    Smoothness,
    SmoothnessConfig,
    Taste,
)
from annotation.models import Listener, TransitionRating, TransitionTask
from annotation.quality_services import quality_update
from embeddings.selectors import clip_matrix, clip_track_ids, embedding_matrix, rendering_get
from embeddings.services import MEL_STATS_SPACE

SPAMMER_KINDS = ("random", "always_a", "fast")
HTTP_TIMEOUT_S = 30
CALIBRATION_PAIRS = 2000  # random (ending, opening) pairs the smoothness rule is scaled on


class InProcessApi:
    """The API through Django's request handler, without a socket."""

    def __init__(self) -> None:
        host = next(
            (h for h in settings.ALLOWED_HOSTS if "*" not in h and not h.startswith(".")),
            "localhost",
        )
        self.client = Client(HTTP_HOST=host)

    def call(
        self, method: str, path: str, token: str | None = None, body: dict | None = None
    ) -> tuple[int, dict | None]:
        headers = {"authorization": f"Listener {token}"} if token else {}
        if method == "GET":
            response = self.client.get(path, headers=headers)
        else:
            response = self.client.post(
                path, json.dumps(body), content_type="application/json", headers=headers
            )
        data = json.loads(response.content) if response.content else None
        return response.status_code, data


class HttpApi:
    """The API of a running server."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()

    def call(
        self, method: str, path: str, token: str | None = None, body: dict | None = None
    ) -> tuple[int, dict | None]:
        headers = {"Authorization": f"Listener {token}"} if token else {}
        response = self.session.request(
            method, self.base + path, json=body, headers=headers, timeout=HTTP_TIMEOUT_S
        )
        return response.status_code, response.json() if response.content else None


class EdgeVectors:
    """Mel-stats vectors of every clip's ending and opening, and the smoothness rule scaled
    on them, so a rendering's seam can be rated without a query per rating."""

    def __init__(self, seed: int, rng: np.random.Generator) -> None:
        ending_ids, endings = clip_matrix(MEL_STATS_SPACE, "ending")
        opening_ids, openings = clip_matrix(MEL_STATS_SPACE, "opening")
        tracks = clip_track_ids()
        if len({tracks[int(c)] for c in opening_ids}) < 2:
            raise CommandError(
                "no mel-stats clip vectors of two tracks: run `import_audio` and `embed` first"
            )
        self.endings = {int(c): v for c, v in zip(ending_ids, endings, strict=True)}
        self.openings = {int(c): v for c, v in zip(opening_ids, openings, strict=True)}
        self.rule = Smoothness(np.vstack([endings, openings]), SmoothnessConfig(seed=seed))
        # Scale the rule on random pairs of two tracks, as random transition tasks are drawn.
        track_x = np.array([tracks[int(c)] for c in ending_ids])
        track_y = np.array([tracks[int(c)] for c in opening_ids])
        i = rng.integers(len(ending_ids), size=CALIBRATION_PAIRS)
        j = rng.integers(len(opening_ids), size=CALIBRATION_PAIRS)
        apart = track_x[i] != track_y[j]
        self.rule.calibrate(endings[i[apart]], openings[j[apart]])
        self._expected: dict[int, float | None] = {}

    def expected(self, rendering_id: int) -> float | None:
        """The noiseless rating of one rendering; None when it or its vectors are missing."""
        if rendering_id not in self._expected:
            self._expected[rendering_id] = self._lookup(rendering_id)
        return self._expected[rendering_id]

    def _lookup(self, rendering_id: int) -> float | None:
        # A true continuation plays Y on from X's end, not from Y's opening; that opening
        # overlaps X's ending, so it stands in for what follows.
        r = rendering_get(rendering_id)
        if r is None or r.clip_x_id not in self.endings or r.clip_y_id not in self.openings:
            return None
        seam = Seam(
            ending=self.endings[r.clip_x_id],
            opening=self.openings[r.clip_y_id],
            style=r.style,
            bpm=(r.tempo_x["bpm"], r.tempo_y["bpm"]),
            tempo_confidence=(r.tempo_x["confidence"], r.tempo_y["confidence"]),
            gain_db=(r.gain_x_db, r.gain_y_db),
        )
        return self.rule.expected(seam)


class Command(BaseCommand):
    help = (
        "Simulated listeners (honest and spammers) answer triplets and, with --transitions, "
        "rate transitions through the HTTP API."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--listeners", type=int, default=20)
        parser.add_argument("--judgments", type=int, default=500, help="Total answers to give.")
        parser.add_argument(
            "--transitions", type=int, default=0, help="Total transition ratings to give."
        )
        parser.add_argument("--spammers", type=float, default=0.0, help="Fraction of spammers.")
        parser.add_argument("--url", default=None, help="Base URL of a running server.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--taste-dims", type=int, default=CrowdConfig.taste_dims)

    def handle(self, *args: object, **o: object) -> None:
        if o["url"]:
            return self.simulate(**o)
        # In-process, one process stands in for many people at one address: the per-listener
        # and per-address rate limits are for real clients. The slow-down for answering
        # faster than the music plays stays on, as it would for people.
        rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
        with override_settings(REST_FRAMEWORK=rates):
            return self.simulate(**o)

    def simulate(self, **o: object) -> None:
        n_listeners, wanted, share = int(o["listeners"]), int(o["judgments"]), float(o["spammers"])
        ratings_wanted, seed = int(o["transitions"]), int(o["seed"])
        if n_listeners < 1 or min(wanted, ratings_wanted) < 0 or not 0 <= share <= 1:
            raise CommandError(
                "need --listeners ≥ 1, --judgments ≥ 0, --transitions ≥ 0 and 0 ≤ --spammers ≤ 1"
            )
        started = time.monotonic()
        rng = np.random.default_rng(seed)
        taste = None
        if wanted:
            ids, vectors = embedding_matrix(MEL_STATS_SPACE)
            if len(ids) < 3:
                raise CommandError("no mel-stats vectors: run `import_audio` and `embed` first")
            taste = Taste(vectors, CrowdConfig(taste_dims=int(o["taste_dims"]), seed=seed))
            taste.calibrate(rng=rng)
            row = {int(s): i for i, s in enumerate(ids)}
        # Ratings draw from a stream of their own, so adding them leaves the answers as they were.
        rating_rng = np.random.default_rng([seed, 2])
        edges = EdgeVectors(seed, rating_rng) if ratings_wanted else None
        api = HttpApi(o["url"]) if o["url"] else InProcessApi()

        n_spam = round(n_listeners * share)
        kinds = ["honest"] * (n_listeners - n_spam) + [SPAMMER_KINDS[i % 3] for i in range(n_spam)]
        crowd = []
        for kind in kinds:
            status, data = api.call("POST", "/api/v1/listeners/", body={"consent": True})
            if status != 201:
                raise CommandError(f"creating a listener failed: HTTP {status} {data}")
            leniency = float(rating_rng.normal(0.0, SmoothnessConfig.leniency_sd))
            crowd.append((SimulatedListener(kind, leniency=leniency), data["token"]))

        stored = duplicates = errors = honest = honest_with_taste = 0
        active = list(range(len(crowd))) if wanted else []
        bar = tqdm(total=wanted, desc="simulated answers", unit="answer")
        turn = 0
        while stored < wanted and active:
            who = active[turn % len(active)]
            listener, token = crowd[who]
            status, task = api.call("GET", "/api/v1/assignments/next/", token)
            if status in (204, 429):  # nothing left, or slowed down: this one is done
                active.remove(who)
                continue
            if status != 200:
                errors += 1
                turn += 1
                continue
            shown = [row[s["snippet"]] for s in task["snippets"]]
            p = taste.probabilities(*shown)
            odd = listener.answer(p, rng)
            heard = listener.listening_times(rng)
            body = {
                "assignment": task["assignment"],
                "answer": "none" if odd is None else "ABC"[odd],
                "response_ms": int(1000 * (heard.sum() + rng.exponential(2.0))),
                "listen_ms": [int(1000 * s) for s in heard],
            }
            status, _ = api.call("POST", "/api/v1/judgments/", token, body)
            if status == 201:
                stored += 1
                bar.update(1)
                if listener.kind == "honest" and odd is not None:
                    honest += 1
                    honest_with_taste += int(odd == int(np.argmax(p)))
            elif status == 200:
                duplicates += 1
            else:
                errors += 1
            turn += 1
        bar.close()
        rated, rating_errors = (
            self._rate(api, crowd, edges, ratings_wanted, rating_rng) if edges else ([], 0)
        )
        # Quality control runs on beat in production; here once, on everything answered.
        quality_update()
        summary = {
            "listeners": n_listeners,
            "spammers": n_spam,
            **flag_shares(crowd),
            "judgments": stored,
            "duplicates": duplicates,
            "errors": errors,
            "honest_taste_agreement": round(honest_with_taste / honest, 3) if honest else None,
            "temperature": round(taste.temperature, 4) if taste else None,
            "ratings": len(rated),
            "rating_errors": rating_errors,
            "rating_mean_by_kind": rating_means(rated),
            "seconds": round(time.monotonic() - started, 1),
            "url": o["url"] or "in-process",
        }
        self.stdout.write(json.dumps(summary))

    def _rate(
        self,
        api: InProcessApi | HttpApi,
        crowd: list[tuple[SimulatedListener, str]],
        edges: EdgeVectors,
        wanted: int,
        rng: np.random.Generator,
    ) -> tuple[list[int], int]:
        """Listeners take turns rating served transitions until `wanted` are stored or none
        is left; returns (ids of the ratings stored, errors)."""
        stored: list[int] = []
        errors = turn = 0
        active = list(range(len(crowd)))
        bar = tqdm(total=wanted, desc="simulated ratings", unit="rating")
        while len(stored) < wanted and active:
            who = active[turn % len(active)]
            turn += 1
            listener, token = crowd[who]
            status, task = api.call("GET", "/api/v1/transitions/next/", token)
            if status in (204, 429):  # nothing left, or slowed down: this one is done
                active.remove(who)
                continue
            if status != 200:
                errors += 1
                continue
            rendering = task["rendering"]
            expected = edges.expected(rendering["id"])
            if expected is None:
                # Nothing to hear it by: give it back rather than be served it again.
                errors += 1
                path = f"/api/v1/transitions/{task['assignment']}/skip/"
                api.call("POST", path, token, {"reason": "other"})
                continue
            rating = listener.rate(expected, rng)
            duration, seam = rendering["duration_s"], rendering["seam_s"]
            heard = listener.rating_listen_s(duration, seam, rng)
            body = {
                "assignment": task["assignment"],
                "rating": rating,
                "response_ms": int(1000 * (heard + rng.exponential(2.0))),
                "listen_ms": int(1000 * heard),
                "broke_at_s": listener.broke_at(rating, seam, duration, rng),
                "plays": 1,
                "seeks": 0,
                "viewport": "desktop",
                "language": "en",
                "waited_ms": 0,
            }
            status, data = api.call("POST", "/api/v1/transitions/ratings/", token, body)
            if status == 201:
                stored.append(data["rating"])
                bar.update(1)
            elif status != 200:  # 200: a repeat of a stored rating, nothing new
                errors += 1
        bar.close()
        return stored, errors


def rating_means(rating_ids: list[int]) -> dict[str, float | None]:
    """Mean rating per task kind over these ratings (None for a kind not rated). Looked up
    after the run: a listener never learns a task's kind."""
    rows = (
        TransitionRating.objects.filter(id__in=rating_ids)
        .values("task__kind")
        .annotate(mean=Avg("rating"))
    )
    means = {r["task__kind"]: round(r["mean"], 3) for r in rows} if rating_ids else {}
    return {kind: means.get(kind) for kind in TransitionTask.Kind.values}


def flag_shares(crowd: list[tuple[SimulatedListener, str]]) -> dict[str, float | None]:
    """Share of the spammers that quality control flagged (`spammer_recall`) and of the
    honest listeners it flagged (`honest_flagged`); None for a group that is empty. Only the
    simulator knows who is which; quality control never sees the kinds."""
    flagged = set(
        Listener.objects.filter(
            token__in=[token for _, token in crowd], review=Listener.Review.FLAGGED
        ).values_list("token", flat=True)
    )
    spam = [token in flagged for listener, token in crowd if listener.kind != "honest"]
    honest = [token in flagged for listener, token in crowd if listener.kind == "honest"]
    return {
        "spammer_recall": round(sum(spam) / len(spam), 3) if spam else None,
        "honest_flagged": round(sum(honest) / len(honest), 3) if honest else None,
    }
