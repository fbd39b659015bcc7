"""Simulated listeners for the fault scenarios: serve, answer, repeat, through the real API,
retrying an answer until the server acknowledges it, and keeping a ledger of every answer
acknowledged to them and of every response that was not a clear one.

A clear failure is a 5xx or 429 whose body is JSON with `detail` (the client waits and
retries), or a dropped connection (the client retries the same answer). Anything else
(a 500, an HTML error page) is counted as unclear, and fails the scenario.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

ANSWER_RETRY_S = 90.0  # s a client keeps retrying one answer before it gives up
ANSWER_PATH = "/api/v1/judgments/"
LISTEN_MS = [6000, 6000, 6000]  # above ODDBALL_MIN_LISTEN_S, so no slow-down applies


@dataclass
class Ledger:
    """What the clients were told, shared by all their threads (guarded by `lock`)."""

    acknowledged: dict[int, int] = field(default_factory=dict)  # assignment -> judgment
    acknowledged_at: list[float] = field(default_factory=list)  # time.monotonic() of each
    pseudonyms: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    connection_errors: int = 0
    answers_cut: int = 0  # answers whose connection dropped before a response came
    retried: int = 0
    replayed: int = 0  # retries answered 200: the first attempt had stored the judgment
    double_ack_mismatch: int = 0  # a retry acknowledged another judgment than the first
    given_up: int = 0
    unclear: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, response: requests.Response) -> bool:
        """Count a response; True when it is a clear one (success, or a JSON error)."""
        with self.lock:
            self.statuses[response.status_code] += 1
        if response.status_code < 400:
            return True
        clear = response.status_code != 500 and _json_detail(response)
        if not clear:
            with self.lock:
                self.unclear.append(f"{response.status_code} {response.text[:120]!r}")
        return clear


def _json_detail(response: requests.Response) -> bool:
    try:
        return "detail" in response.json()
    except ValueError:
        return False


class Listener(threading.Thread):
    """One simulated listener: create itself, then serve and answer until `stop` is set.
    An answer in flight when `stop` is set is still retried until acknowledged."""

    def __init__(self, base: str, ledger: Ledger, stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.ledger = ledger
        self.stop = stop
        self.rng = random.Random(seed)
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs: object) -> requests.Response | None:
        """One request; None on a dropped connection or a clear error (the caller retries)."""
        try:
            response = self.http.request(method, self.base + path, timeout=15, **kwargs)
        except requests.RequestException:
            with self.ledger.lock:
                self.ledger.connection_errors += 1
                self.ledger.answers_cut += path == ANSWER_PATH
            fresh = requests.Session()  # the old connection may be half-closed
            fresh.headers.update(self.http.headers)
            self.http = fresh
            time.sleep(0.2)
            return None
        if not self.ledger.note(response):
            return None
        if response.status_code in (429, 502, 503, 504):
            wait = min(float(response.headers.get("Retry-After", "1") or 1), 2.0)
            time.sleep(wait * self.rng.uniform(0.5, 1.0))
            return None
        return response

    def run(self) -> None:
        created = None
        while created is None and not self.stop.is_set():
            created = self.call("POST", "/api/v1/listeners/", json={"consent": True})
        if created is None:
            return
        body = created.json()
        with self.ledger.lock:
            self.ledger.pseudonyms.append(body["pseudonym"])
        self.http.headers["Authorization"] = f"Listener {body['token']}"
        while not self.stop.is_set():
            served = self.call("GET", "/api/v1/assignments/next/")
            if served is None:
                continue
            if served.status_code == 204:
                return  # nothing left for this listener
            if served.status_code != 200:
                with self.ledger.lock:
                    self.ledger.unclear.append(f"serving refused: {served.status_code}")
                return
            self.answer(served.json()["assignment"])

    def answer(self, assignment: int) -> None:
        payload = {
            "assignment": assignment,
            "answer": self.rng.choice("ABC"),
            "response_ms": 7000,
            "listen_ms": LISTEN_MS,
        }
        deadline = time.monotonic() + ANSWER_RETRY_S
        attempts = 0
        while time.monotonic() < deadline:
            attempts += 1
            response = self.call("POST", ANSWER_PATH, json=payload)
            if response is None:
                continue
            if response.status_code not in (200, 201):
                with self.ledger.lock:
                    self.ledger.unclear.append(f"answer refused: {response.status_code}")
                return
            judgment = response.json()["judgment"]
            with self.ledger.lock:
                self.ledger.retried += attempts > 1
                self.ledger.replayed += attempts > 1 and response.status_code == 200
                known = self.ledger.acknowledged.setdefault(assignment, judgment)
                self.ledger.acknowledged_at.append(time.monotonic())
                self.ledger.double_ack_mismatch += known != judgment
            return
        with self.ledger.lock:
            self.ledger.given_up += 1


def run_load(
    base: str, listeners: int, stop: threading.Event, ledger: Ledger, seed: int = 0
) -> list[Listener]:
    """Start `listeners` threads; they run until `stop` is set (join them afterwards)."""
    threads = [Listener(base, ledger, stop, seed * 1000 + i) for i in range(listeners)]
    for thread in threads:
        thread.start()
    return threads


def finish(threads: list[Listener], timeout_s: float = ANSWER_RETRY_S + 20) -> None:
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0.1))
