"""The regional circuit as an HTTP JSON feed: the CSV export's rows, fetched page by page.

Protocol: `GET url` answers `{"passes": [item, ...], "next": "<URL>" | null}` (both keys
required; `next` absolute or relative to the page, on the feed's own origin) and an `ETag` on
the first page. With the ETag of the last sync we send `If-None-Match` on the first page: 304
means nothing changed. Items carry the CSV's column names (loader/regional.py COLUMNS) with
string or null values (`principale` may be a boolean), every required column present (null
for an empty field: an item without `fine` is an item cut short, not an unlimited pass); an
item that breaks that becomes a reject row, validated later like a bad CSV line.

The feed is a complete export, so it is all or nothing: any page that stays unusable after
the retries (network, timeout, 5xx, 429), a 4xx, a body that is not a feed page, a `next`
loop or too many pages raises FeedFetchError, never a partial list; the caller keeps the
source's last good data. Messages name URLs without query string or credentials, and the
bearer token goes only to the feed's origin, never into a message or a log.
"""

from __future__ import annotations

import http.client
import logging
import random
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .feedcsv import FeedFileError
from .regional import COLUMNS, REQUIRED

log = logging.getLogger(__name__)

MAX_DELAY_S: Final = 30.0  # cap on one back-off or Retry-After wait
MAX_PAGE_BYTES: Final = 256 * 2**20  # a page is a slice of the export, not an endless stream
_CHUNK: Final = 1 << 16
_USER_AGENT: Final = "varco-feed/1"

Row = tuple[int, dict[str, str]]
Origin = tuple[str, str, int]  # scheme, host, port: where the token may go


class FeedFetchError(FeedFileError):
    """The feed could not be fetched whole; nothing of it is applied. A FeedFileError, so
    callers treat it as an unusable export."""


@dataclass(frozen=True, slots=True)
class NotModified:
    """The feed answered 304 to our ETag: nothing to sync."""

    etag: str


@dataclass(frozen=True, slots=True)
class FeedPage:
    """The whole feed, all pages: rows for loader.regional.parse_regional_rows."""

    rows: list[Row]  # (1-based position over all pages, row by column name)
    etag: str | None  # the first page's, to send as If-None-Match next time
    pages: int


class _Page(msgspec.Struct):
    passes: list[Any]
    # Required: a feed that paginates some other way must not pass as its first page alone,
    # which as a complete export would close every pass on the later pages.
    next: str | None


class _Retry(Exception):
    """A failure worth another attempt; `after` is the server's Retry-After, if any."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def fetch_regional_feed(
    url: str,
    *,
    etag: str | None = None,
    token: str | None = None,
    timeout_s: float = 10,
    retries: int = 4,
    backoff_s: float = 0.5,
    max_pages: int = 10_000,
    page_deadline_s: float = 120,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> FeedPage | NotModified:
    """Every item of the feed at `url`, or NotModified when `etag` still matches.

    `timeout_s` bounds the connection and each read; `page_deadline_s` a page's whole
    download (a server dripping bytes passes every read timeout). Each page gets `retries`
    more attempts after connection errors, timeouts, 5xx and 429, waiting
    `rng() * backoff_s * 2**attempt` (full jitter, so many clients do not retry in step) or
    the server's Retry-After, both capped at MAX_DELAY_S.
    """
    if retries < 0 or max_pages < 1:
        raise ValueError("retries must be >= 0 and max_pages >= 1")
    origin = _origin(url)
    if origin is None:
        raise FeedFetchError(f"feed URL {redact(url)}: not an http(s) URL with a host")
    # Checked here: http.client's own complaint about a bad header quotes the value.
    if token is not None and not _visible_ascii(token):
        raise FeedFetchError(f"feed {redact(url)}: the token has characters a header cannot carry")
    client = _Client(
        _opener(origin, token),
        origin,
        token,
        timeout_s,
        retries,
        backoff_s,
        page_deadline_s,
        sleep,
        rng,
    )
    page_url, _ = urllib.parse.urldefrag(url)
    seen = {page_url}
    rows: list[Row] = []
    first_etag: str | None = None
    for number in range(1, max_pages + 1):
        where = redact(page_url) if number == 1 else f"{redact(page_url)} (page {number})"
        conditional = etag if number == 1 else None
        status, final_url, reply_etag, body = client.get(page_url, conditional, where)
        if status == 304:
            if conditional is None:
                raise FeedFetchError(f"feed {where}: 304 Not Modified to an unconditional GET")
            return NotModified(reply_etag or conditional)
        if number == 1:
            first_etag = reply_etag
        try:
            page = msgspec.json.decode(body, type=_Page)
        except msgspec.DecodeError as exc:
            raise FeedFetchError(
                f"feed {where}: not a page of passes and next link: {exc}"
            ) from None
        rows.extend((len(rows) + 1, _row(item)) for item in page.passes)
        if page.next is None:
            return FeedPage(rows, first_etag, number)
        # Relative to the page that carried it, after any redirect, as a browser would.
        try:
            page_url, _ = urllib.parse.urldefrag(urllib.parse.urljoin(final_url, page.next))
        except ValueError:
            raise FeedFetchError(f"feed {where}: its next link is not a URL") from None
        if _origin(page_url) != origin:
            raise FeedFetchError(
                f"feed {where}: next link {redact(page_url)} leaves the feed's origin"
            )
        if page_url in seen:
            raise FeedFetchError(
                f"feed {where}: next link {redact(page_url)} was already fetched: a page loop"
            )
        seen.add(page_url)
    raise FeedFetchError(f"feed {redact(url)}: more than {max_pages} pages")


def redact(url: str) -> str:
    """The URL for messages: no credentials, query string or fragment (tokens live there)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<malformed URL>"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _origin(url: str) -> Origin | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    # The token is an unredirected header, which urllib drops on every redirect; put it back
    # only where the redirect stays on the feed's origin.
    def __init__(self, origin: Origin, token: str | None) -> None:
        self.origin, self.token = origin, token

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.token and _origin(new.full_url) == self.origin:
            new.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return new


def _opener(origin: Origin, token: str | None) -> urllib.request.OpenerDirector:
    # Built by hand, not build_opener(): no file:, ftp: or data: handlers a `next` link or a
    # redirect could reach.
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _RedirectHandler(origin, token),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


@dataclass(frozen=True, slots=True)
class _Client:
    opener: urllib.request.OpenerDirector
    origin: Origin
    token: str | None
    timeout_s: float
    retries: int
    backoff_s: float
    page_deadline_s: float
    sleep: Callable[[float], None]
    rng: Callable[[], float]

    def get(self, url: str, etag: str | None, where: str) -> tuple[int, str, str | None, bytes]:
        """(status, final URL, ETag, body) of a page, retried as the policy says."""
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if etag:
            headers["If-None-Match"] = etag
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(url, headers=headers)
            if self.token and _origin(url) == self.origin:
                request.add_unredirected_header("Authorization", f"Bearer {self.token}")
            try:
                return self._attempt(request, where)
            except _Retry as exc:
                if attempt == self.retries:
                    raise FeedFetchError(
                        f"feed {where}: {exc}, still after {self.retries} retries"
                    ) from None
                cap = min(MAX_DELAY_S, self.backoff_s * 2**attempt)
                delay = self.rng() * cap if exc.after is None else min(MAX_DELAY_S, exc.after)
                log.warning(
                    "feed %s: %s; retry %d of %d in %.1f s",
                    where,
                    exc,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(
        self, request: urllib.request.Request, where: str
    ) -> tuple[int, str, str | None, bytes]:
        # Exceptions are re-raised `from None`: urllib's carry the full URL, query and all.
        try:
            # urllib applies the timeout to the connection and to every socket read.
            with self.opener.open(request, timeout=self.timeout_s) as response:
                deadline = time.monotonic() + self.page_deadline_s
                chunks, size = [], 0
                # read1: whatever one socket read brings, so the deadline is checked often.
                while chunk := response.read1(_CHUNK):
                    size += len(chunk)
                    if size > MAX_PAGE_BYTES:
                        raise FeedFetchError(f"feed {where}: a page over {MAX_PAGE_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise _Retry(f"the page took over {self.page_deadline_s:g} s")
                    chunks.append(chunk)
                if response.length:  # read1 ends quietly where the connection did
                    raise _Retry(f"the body ended {response.length} bytes short")
                status: int = response.status
                final_url: str = response.url
                etag: str | None = response.headers.get("ETag")
                return status, final_url, etag, b"".join(chunks)
        except urllib.error.HTTPError as exc:
            with exc:  # it holds the open response
                status_text = f"HTTP {exc.code} {http.client.responses.get(exc.code, '')}"
                if exc.code == 304:
                    return 304, request.full_url, exc.headers.get("ETag"), b""
                if exc.code == 429 or exc.code >= 500:
                    after = _retry_after(exc.headers.get("Retry-After"))
                    raise _Retry(status_text.rstrip(), after) from None
                raise FeedFetchError(f"feed {where}: {status_text.rstrip()}") from None
        except urllib.error.URLError as exc:
            # A socket error may pass; a reason that is text (unknown scheme, no host) or a
            # certificate that does not verify will not.
            reason = exc.reason
            if isinstance(reason, OSError) and not isinstance(reason, ssl.CertificateError):
                raise _Retry(f"cannot connect: {reason}") from None
            raise FeedFetchError(f"feed {where}: {reason}") from None
        except (http.client.InvalidURL, ValueError):  # their text quotes the URL or header
            raise FeedFetchError(f"feed {where}: a URL or header that cannot be sent") from None
        except (OSError, http.client.HTTPException) as exc:  # read timeout, reset, short body
            raise _Retry(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            ) from None


def _retry_after(value: str | None) -> float | None:
    # Seconds only; the HTTP-date form falls back to our own back-off.
    try:
        seconds = float(value or "")
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None  # not NaN either


def _visible_ascii(text: str) -> bool:
    return all("!" <= c <= "~" for c in text)


def _kind(value: object) -> str:
    if isinstance(value, bool):  # before int: a bool is one
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "null"


def _row(item: object) -> dict[str, str]:
    """A feed item as a CSV row; what cannot be one becomes an `__error__` row that names the
    pass where it can, so the pass is rejected whole rather than closed."""
    row = dict.fromkeys(COLUMNS, "")
    if not isinstance(item, dict):
        row["__error__"] = f"the item is {_kind(item)}, not an object"
        return row
    errors = []
    lacking = [name for name in REQUIRED if name not in item]
    if lacking:  # the JSON of a row cut short: its fields do not default
        errors.append(f"the item lacks {', '.join(lacking)}")
    for name in COLUMNS:
        value = item.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            row[name] = value.strip()
        elif isinstance(value, bool) and name == "principale":
            row[name] = "S" if value else "N"
        else:
            errors.append(f"{name} is {_kind(value)}, not text")
    if errors:
        row["__error__"] = "; ".join(errors)
    return row
