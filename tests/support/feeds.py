"""The regional circuit's feeds: its CSV export (rows as the circuit writes them, Windows-1252
as Excel saves them), and its HTTP JSON feed served by a real HTTP server on loopback whose
answers each test scripts (the `feed` fixture, tests/loader/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec

from loader.httpfeed import FeedPage, NotModified, fetch_regional_feed

HEADER = (
    "numero_pass;comune;targa;principale;tipo_pass;inizio;fine;stato;data_revoca;pass_precedente"
)


def regional(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode("cp1252")  # as Excel on Windows


GOOD = [
    "L736_2024_00015;L736;AB123CD;S;DISABILITÀ;01/03/2024;28/02/2029;attivo;;",
    "L736_2024_00015;L736;CD456EF;N;DISABILITÀ;01/03/2024;28/02/2029;attivo;;",
    # the same plate on a second pass of another comune, overlapping: both count
    "G224_2025_00003;G224;AB123CD;S;DISABILI;10/01/2025 08:30;10/01/2027;attivo;;",
]


# -- the HTTP JSON feed ----------------------------------------------------------------------

TOKEN = "s3cret-token"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before answering
    drip: float = 0.0  # between the body's bytes
    short: int = 0  # bytes promised in Content-Length but never sent


def page(passes: list[Any], next_: str | None, **headers: str) -> Answer:
    return Answer(200, msgspec.json.encode({"passes": passes, "next": next_}), headers)


Route = list[Answer] | Callable[[dict[str, str]], Answer]


class Feed:
    """Routes by path and query: a list of answers is served in order, its last one repeated;
    a callable answers from the request's headers. `seen` records (path, headers)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.seen]

    def answer(self, path: str, headers: dict[str, str]) -> Answer:
        self.seen.append((path, headers))
        route = self.routes.get(path)
        if route is None:
            return Answer(404)
        if callable(route):
            return route(headers)
        return route.pop(0) if len(route) > 1 else route[0]


class FeedServer(ThreadingHTTPServer):
    feed: Feed


class FeedHandler(BaseHTTPRequestHandler):
    server: FeedServer

    def do_GET(self) -> None:
        feed = self.server.feed
        answer = feed.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
        if answer.delay and feed.stop.wait(answer.delay):
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if answer.status != 304:
                self.send_header("Content-Length", str(len(answer.body) + answer.short))
            self.end_headers()
            if not answer.drip:
                self.wfile.write(answer.body)
                return
            for i in range(len(answer.body)):
                self.wfile.write(answer.body[i : i + 1])
                if feed.stop.wait(answer.drip):
                    return
        except OSError:  # the client gave up first, as it should
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Sleeps(list[float]):
    """An injected sleep: records the delays, waits for none."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def item(number: str, plate: Any, **fields: Any) -> dict[str, Any]:
    return {
        "numero_pass": number,
        "comune": number[:4],
        "targa": plate,
        "principale": True,
        "tipo_pass": "DISABILITÀ",
        "inizio": "01/03/2024",
        "fine": "28/02/2029",
        "stato": "attivo",
        "data_revoca": None,
        **fields,
    }


def fetch(url: str, **kw: Any) -> FeedPage | NotModified:
    kw.setdefault("sleep", Sleeps())
    return fetch_regional_feed(url, **{"timeout_s": 0.5, "retries": 2, **kw})
