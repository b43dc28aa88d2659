"""Request bodies: size caps checked while reading, compression undone after authentication,
multipart parts streamed and counted.

Vendor posts carry pictures (multipart parts, or base64 inside JSON). Varco never stores them:
a multipart body is read part by part, the metadata part kept and every other part drained
chunk by chunk and dropped, so a large picture never sits whole in memory. Any body is refused
with 413 as soon as it passes its cap (`server.max_camera_body_bytes`, 8 MiB, for the camera
routes; `server.max_body_bytes` for the API), before it is read to the end; a body announced
larger than the cap is refused before a byte of it is read.

The server does not decompress (connections.py): a `Content-Encoding: gzip` or `deflate` body
is inflated here, by the handler that has already authenticated its sender, chunk by chunk,
never past the cap (a 1 MB gzip bomb stops at the cap's worth of output, not at its 1 GiB).
Other encodings are refused (415).

A multipart body holds at most MAX_PARTS parts (a camera event has two or three: the event
and its pictures): 75,000 tiny parts would keep the loop parsing headers for seconds.

Most posts are a few kB of uncompressed JSON that arrive with their headers: `buffered`
hands such a body over without an await (the handler's fast path); anything still arriving,
compressed, or multipart goes through `read_body` / `read_parts`.
"""

from __future__ import annotations

import asyncio
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from .. import errors

CHUNK: Final = 64 * 1024
# A metadata part (the event's XML or JSON) larger than this is no camera event.
MAX_META_PART: Final = 1 << 20
MAX_PARTS: Final = 16
# zlib's window bits per Content-Encoding: 31 a gzip member, 15 a zlib stream ("deflate" as
# RFC 9110 defines it; a raw deflate stream, as some clients send, is retried with -15).
_WBITS: Final = {"gzip": 31, "x-gzip": 31, "deflate": 15}

# aiohttp warns, through `warnings`, with the header's text, of a malformed
# Content-Disposition: request bytes that must not reach the log. The part is read anyway
# (its name empty), and a missing metadata part is answered 422.
warnings.filterwarnings("ignore", category=BadContentDispositionHeader)
warnings.filterwarnings("ignore", category=BadContentDispositionParam)


class Malformed(errors.ApiError):
    """A body that cannot be read as the vendor's format (XML, multipart): 400."""

    status, code = 400, "malformed_body"


def _too_large(cap: int) -> errors.TooLarge:
    return errors.TooLarge(f"request body over {cap} bytes")


def content_encoding(request: web.Request) -> int | None:
    """zlib's window bits for the body's Content-Encoding; None for none; 415 otherwise."""
    raw = request.headers.get(hdrs.CONTENT_ENCODING)
    if raw is None:
        return None
    name = raw.strip().lower()
    if name in ("", "identity"):
        return None
    wbits = _WBITS.get(name)
    if wbits is None:
        raise errors.UnsupportedMediaType(
            f"Content-Encoding {name[:40]!r} is not supported: send gzip, deflate or none"
        )
    return wbits


def buffered(request: web.Request, cap: int) -> bytes | None:
    """The whole body if the server has already received all of it, at most `cap` bytes and
    not compressed: the bytes `read_body` would return, without awaiting. None otherwise."""
    content = request.content
    if type(content) is not StreamReader or not content.is_eof() or content.total_bytes > cap:
        return None
    if content.exception() is not None or hdrs.CONTENT_ENCODING in request.headers:
        return None
    return content.read_nowait()


async def read_body(request: web.Request, cap: int) -> bytes:
    """The whole body, decompressed, at most `cap` bytes (413 past it, without reading the
    rest). The server's body_timeout bounds how long it may take to arrive."""
    wbits = content_encoding(request)
    length = request.content_length
    if length is not None and length > cap:
        raise _too_large(cap)
    if wbits is None and length is not None:
        if length == 0:  # aiohttp's empty payload refuses even readexactly(0)
            return b""
        try:
            return await request.content.readexactly(length)
        except asyncio.IncompleteReadError:
            raise Malformed("the body ended before its Content-Length") from None
    inflate = None if wbits is None else _Inflater(wbits, cap)
    buf = bytearray()  # chunked transfer (no length announced), or compressed
    received = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        received += len(chunk)
        if received > cap:
            raise _too_large(cap)
        buf += chunk if inflate is None else inflate.feed(chunk)
        if len(buf) > cap:
            raise _too_large(cap)
    if inflate is not None:
        buf += inflate.end()
    return bytes(buf)


class _Inflater:
    """A compressed body undone a chunk at a time, never more than `cap` bytes of output."""

    def __init__(self, wbits: int, cap: int) -> None:
        self.wbits, self.cap, self.out = wbits, cap, 0
        self.z = zlib.decompressobj(wbits)
        self.started = False

    def feed(self, chunk: bytes) -> bytes:
        if not self.started and self.wbits == 15 and chunk and (chunk[0] & 0x0F) != 8:
            self.z = zlib.decompressobj(-15)  # not a zlib header: a raw deflate stream
        self.started = True
        out = bytearray()
        data = chunk
        while data:
            try:  # at most one byte past the cap: enough to know it is over
                piece = self.z.decompress(data, self.cap - self.out + 1)
            except zlib.error:
                raise Malformed("the compressed body is corrupt") from None
            self.out += len(piece)
            if self.out > self.cap:
                raise errors.TooLarge(f"request body over {self.cap} bytes once decompressed")
            out += piece
            data = self.z.unconsumed_tail
            if self.z.eof:
                if self.z.unused_data or data:  # a second gzip member, or garbage
                    raise Malformed("data after the end of the compressed body")
                break
        return bytes(out)

    def end(self) -> bytes:
        if not self.z.eof:
            raise Malformed("the compressed body ended before its end")
        return b""


@dataclass(frozen=True, slots=True)
class Part:
    name: str  # the form field name ("" if none)
    filename: str
    content_type: str  # lower case, without parameters ("" if none)
    data: bytes


# (name, filename, content type) -> keep the part (True) or drain it
Wanted = Callable[[str, str, str], bool]


def is_multipart(request: web.Request) -> bool:
    raw = request.headers.get(hdrs.CONTENT_TYPE)
    if raw is None or "multipart" not in raw.lower():  # no need to parse the header
        return False
    return request.content_type.startswith("multipart/")


async def read_parts(request: web.Request, cap: int, wanted: Wanted) -> list[Part]:
    """The parts `wanted` accepts (each at most 1 MiB), in order; every other part is read
    and discarded as it streams in. The whole body is held to `cap`, and to MAX_PARTS."""
    if request.content_length is not None and request.content_length > cap:
        raise _too_large(cap)
    stream = request.content
    if content_encoding(request) is not None:  # the whole body inflated first, within cap
        stream = _stream_of(await read_body(request, cap))
    try:
        reader = MultipartReader(request.headers, stream)
    except (ValueError, AssertionError, KeyError) as exc:
        raise Malformed(f"not a multipart body: {exc}") from None
    total = 0
    kept: list[Part] = []
    try:
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                return kept
            if not isinstance(part, BodyPartReader):
                raise Malformed("nested multipart bodies are not supported")
            ctype = part.headers.get(hdrs.CONTENT_TYPE, "").split(";", 1)[0].strip().lower()
            name, filename = part.name or "", part.filename or ""
            buf = bytearray() if wanted(name, filename, ctype) else None
            while chunk := await part.read_chunk(CHUNK):
                total += len(chunk)
                if total > cap:
                    raise _too_large(cap)
                if buf is not None:
                    buf += chunk
                    if len(buf) > MAX_META_PART:
                        raise errors.TooLarge(f"part over {MAX_META_PART} bytes", name or None)
            if buf is not None:
                kept.append(Part(name, filename, ctype, bytes(buf)))
    except (
        ValueError,
        AssertionError,
        LookupError,
        EOFError,
        asyncio.IncompleteReadError,
        UnicodeDecodeError,
        HttpProcessingError,  # a part's headers that are not headers
        # Raised only where warnings are made errors (a test run's filters replace the
        # module's "ignore" above): then a malformed Content-Disposition is a 400 as well.
        BadContentDispositionHeader,
        BadContentDispositionParam,
    ) as exc:
        # The exception's text may quote the body: only its kind is said.
        raise Malformed(f"malformed multipart body ({type(exc).__name__})") from None
    raise errors.TooLarge(f"more than {MAX_PARTS} parts in the multipart body")


def _stream_of(data: bytes) -> StreamReader:
    """An aiohttp stream holding `data` whole, for MultipartReader (an inflated body)."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), CHUNK, loop=loop)
    stream.feed_data(data)
    stream.feed_eof()
    return stream
