"""Whether a packet is exactly one whole request that admission may refuse before aiohttp
parses it (connections.py), and how its connection is to end: the framing alone, read by two
compiled patterns, conservatively (anything unusual is aiohttp's to frame)."""

from __future__ import annotations

import re
from typing import Final

from .admission import UNMETERED


def whole_request(data: bytes) -> bool | None:
    """Whether `data`, if it is exactly one whole request that admission may refuse, asks for
    the connection to close; None when it is anything else (a head or body in parts, more
    than one request, a chunked or `Expect` body, a HEAD (its answer has no body), health,
    readiness or metrics, HTTP/1.0): those go to aiohttp as usual, and are refused, if still,
    by their route's admission.

    Two compiled patterns and a search instead of aiohttp's parse (a message, headers, a
    URL, a payload stream: most of what a request costs before its handler), so refusing
    costs a small part of serving. Conservative: at most one Content-Length, no
    Transfer-Encoding, Connection only `close` or `keep-alive`, a path without escapes (the
    router decodes them: `/health%7A` is health), and the bytes end where the length
    says. The request line must start the bytes: the rest of a request split across packets
    (its first part already with aiohttp's parser) never does, as no tail of these methods
    is one of them."""
    line = _REQUEST_LINE.match(data)
    if line is None or line[1] in _UNMETERED_TARGETS:
        return None
    headers = line.end() - 2  # from the line's CRLF: every header follows one
    end = data.find(b"\r\n\r\n", headers)
    if end < 0:
        return None
    length: int | None = None  # no Content-Length: no body
    close = False
    for content_length, connection, value in _FRAMING.findall(data, headers, end + 2):
        if content_length:
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif connection:
            value = value.lower()
            if value == b"close":
                close = True
            elif value != b"keep-alive":
                return None
        else:  # Transfer-Encoding, Expect: aiohttp's to frame
            return None
    return close if len(data) == end + 4 + (length or 0) else None


# Methods whose answer has a body (a refusal to HEAD must not send one); an origin-form
# path without escapes (its query may have them); HTTP/1.1 (1.0 closes after each answer).
_REQUEST_LINE: Final = re.compile(
    rb"(?:GET|POST|PUT|PATCH|DELETE) (/[^ ?%\r\n]*)(?:\?[^ \r\n]*)? HTTP/1\.1\r\n"
)
# The headers that frame a request or its connection; each after a CRLF (never a value).
_FRAMING: Final = re.compile(
    rb"\r\n(?:(content-length)|(connection)|transfer-encoding|expect)[ \t]*:[ \t]*([^\r\n]*)",
    re.IGNORECASE,
)
_UNMETERED_TARGETS: Final = frozenset(path.encode() for path in UNMETERED)
UNMETERED_GETS: Final = tuple(b"GET " + path for path in _UNMETERED_TARGETS)
