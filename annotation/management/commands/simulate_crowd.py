"""python manage.py simulate_crowd : simulated listeners answer triplets through the real API.

A tool for demos, tests and benchmarks, never a source of real data. Answers come from a
hidden taste over each snippet's mel-stats vector (annotation/crowd.py); the simulator looks
the vectors up in this installation's database, so --url must point at a server that shares
it. Without --url the requests go through Django in-process (same URLs, views and database).
"""

import json
import time

import numpy as np
import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client
from tqdm import tqdm

from annotation.crowd import CrowdConfig, SimulatedListener, Taste
from embeddings.selectors import embedding_matrix
from embeddings.services import MEL_STATS_SPACE

SPAMMER_KINDS = ("random", "always_a", "fast")
HTTP_TIMEOUT_S = 30


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


class Command(BaseCommand):
    help = "Simulated listeners (honest and spammers) answer triplets through the HTTP API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--listeners", type=int, default=20)
        parser.add_argument("--judgments", type=int, default=500, help="Total answers to give.")
        parser.add_argument("--spammers", type=float, default=0.0, help="Fraction of spammers.")
        parser.add_argument("--url", default=None, help="Base URL of a running server.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--taste-dims", type=int, default=CrowdConfig.taste_dims)

    def handle(self, *args: object, **o: object) -> None:
        n_listeners, wanted, share = int(o["listeners"]), int(o["judgments"]), float(o["spammers"])
        if n_listeners < 1 or wanted < 0 or not 0 <= share <= 1:
            raise CommandError("need --listeners ≥ 1, --judgments ≥ 0 and 0 ≤ --spammers ≤ 1")
        ids, vectors = embedding_matrix(MEL_STATS_SPACE)
        if len(ids) < 3:
            raise CommandError("no mel-stats vectors: run `import_audio` and `embed` first")
        started = time.monotonic()
        rng = np.random.default_rng(int(o["seed"]))
        taste = Taste(vectors, CrowdConfig(taste_dims=int(o["taste_dims"]), seed=int(o["seed"])))
        taste.calibrate(rng=rng)
        row = {int(s): i for i, s in enumerate(ids)}
        api = HttpApi(o["url"]) if o["url"] else InProcessApi()

        n_spam = round(n_listeners * share)
        kinds = ["honest"] * (n_listeners - n_spam) + [SPAMMER_KINDS[i % 3] for i in range(n_spam)]
        crowd = []
        for kind in kinds:
            status, data = api.call("POST", "/api/v1/listeners/", body={"consent": True})
            if status != 201:
                raise CommandError(f"creating a listener failed: HTTP {status} {data}")
            crowd.append((SimulatedListener(kind), data["token"]))

        stored = duplicates = errors = honest = honest_with_taste = 0
        active = list(range(len(crowd)))
        bar = tqdm(total=wanted, desc="simulated answers", unit="answer")
        turn = 0
        while stored < wanted and active:
            who = active[turn % len(active)]
            listener, token = crowd[who]
            status, task = api.call("GET", "/api/v1/assignments/next/", token)
            if status == 204:
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
        summary = {
            "listeners": n_listeners,
            "spammers": n_spam,
            "judgments": stored,
            "duplicates": duplicates,
            "errors": errors,
            "honest_taste_agreement": round(honest_with_taste / honest, 3) if honest else None,
            "temperature": round(taste.temperature, 4),
            "seconds": round(time.monotonic() - started, 1),
            "url": o["url"] or "in-process",
        }
        self.stdout.write(json.dumps(summary))
