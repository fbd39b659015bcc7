"""The load benchmark's client side (used by bench/load.py; running it does nothing).

A minimal HTTP/1.1 client on asyncio streams, one keep-alive connection per simulated
listener, all on one event loop: it costs far less CPU than a general client, and the
load generator shares the machine's two cores with the server it measures.
"""

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field


class HttpError(Exception):
    """The server closed the connection or sent something this client cannot read."""


@dataclass
class Sample:
    kind: str  # "serve", "answer", "create", "bare"
    done_at: float  # time.monotonic() when the response was read
    ms: float
    status: int


@dataclass
class Stats:
    samples: list[Sample] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)  # "answer 429", "serve ConnectionResetError"
    judgments: set[int] = field(default_factory=set)  # ids acknowledged with a 2xx

    def window(self, kind: str, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples if s.kind == kind and start <= s.done_at < end]


class Connection:
    """One keep-alive connection; reconnects when the server closed an idle one."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: dict | None = None, token: str = ""
    ) -> tuple[int, dict | None]:
        """Send one request and read its response: (status, parsed JSON body or None)."""
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if token:
            head += f"Authorization: Listener {token}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(head.encode() + payload)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            await self.close()
            raise HttpError("closed before the response") from e
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            data = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                data += (await self.reader.readexactly(size + 2))[:-2]
            await self.reader.readuntil(b"\r\n")
        else:
            data = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, json.loads(data) if data else None


async def timed(
    stats: Stats, kind: str, conn: Connection, method: str, path: str, **kw: object
) -> tuple[int, dict | None]:
    """A request whose latency and status go into `stats`; (0, None) on an exception."""
    started = time.monotonic()
    try:
        status, body = await conn.request(method, path, **kw)
    except (OSError, HttpError, asyncio.IncompleteReadError, ValueError) as e:
        await conn.close()
        stats.errors[f"{kind} {type(e).__name__}"] += 1
        return 0, None
    now = time.monotonic()
    stats.samples.append(Sample(kind, now, (now - started) * 1000, status))
    if not 200 <= status < 300:
        stats.errors[f"{kind} {status}"] += 1
    return status, body


async def listener(
    port: int, stats: Stats, until: float, think_s: tuple[float, float], rng: random.Random
) -> None:
    """One simulated listener: consent, then serve, listen, answer, repeat until `until`."""
    conn = Connection(port)
    await asyncio.sleep(rng.uniform(0, think_s[1]))  # arrive spread out, not all at once
    status, body = await timed(
        stats, "create", conn, "POST", "/api/v1/listeners/", body={"consent": True}
    )
    if status != 201:
        return await conn.close()
    token = body["token"]
    while time.monotonic() < until:
        status, task = await timed(
            stats, "serve", conn, "GET", "/api/v1/assignments/next/", token=token
        )
        if status != 200:
            await asyncio.sleep(think_s[1])  # 204 (nothing left), 429 or an error: back off
            continue
        think = rng.uniform(*think_s)
        await asyncio.sleep(think)
        heard = int(think * 1000)
        answer = {
            "assignment": task["assignment"],
            "answer": rng.choice("ABC"),
            "response_ms": heard,
            "listen_ms": [heard, heard, heard],
        }
        status, body = await timed(
            stats, "answer", conn, "POST", "/api/v1/judgments/", body=answer, token=token
        )
        if 200 <= status < 300:
            stats.judgments.add(body["judgment"])
    await conn.close()


async def bare_client(port: int, stats: Stats, until: float) -> None:
    """A client of the bare view, back to back: what the stack serves at most."""
    conn = Connection(port)
    while time.monotonic() < until:
        await timed(stats, "bare", conn, "GET", "/bench/bare/")
    await conn.close()


async def run_level(
    port: int, concurrent: int, seconds: float, think_s: tuple[float, float], bare: bool, seed: int
) -> Stats:
    """`concurrent` listeners (or bare-view clients) for `seconds`; their Stats."""
    stats = Stats()
    until = time.monotonic() + seconds
    rng = random.Random(seed)
    if bare:
        jobs = [bare_client(port, stats, until) for _ in range(concurrent)]
    else:
        jobs = [
            listener(port, stats, until, think_s, random.Random(rng.random()))
            for _ in range(concurrent)
        ]
    await asyncio.gather(*jobs)
    return stats
