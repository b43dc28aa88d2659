"""Camera request bodies: a size cap checked while reading, and multipart parts streamed.

Vendor posts carry pictures (multipart parts, or base64 inside JSON). Varco never stores them:
a multipart body is read part by part, the metadata part kept and every other part drained
chunk by chunk and dropped, so a large picture never sits whole in memory. Any body is refused
with 413 as soon as it passes the cap (`server.max_camera_body_bytes`, default 8 MiB), before
it is read to the end.

Most posts are a few kB of JSON that arrive with their headers: `buffered` hands such a body
over without an await (the handler's fast path); anything still arriving, compressed, or
multipart goes through `read_body` / `read_parts`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web

from .. import errors

CHUNK: Final = 64 * 1024
# A metadata part (the event's XML or JSON) larger than this is no camera event.
MAX_META_PART: Final = 1 << 20


class Malformed(errors.ApiError):
    """A body that cannot be read as the vendor's format (XML, multipart): 400."""

    status, code = 400, "malformed_body"


def _too_large(cap: int) -> errors.TooLarge:
    return errors.TooLarge(f"request body over {cap} bytes (server.max_camera_body_bytes)")


def buffered(request: web.Request, cap: int) -> bytes | None:
    """The whole body if the server has already received all of it, at most `cap` bytes and
    not compressed: the bytes `read_body` would return, without awaiting. None otherwise."""
    content = request.content
    if type(content) is not StreamReader or not content.is_eof() or content.total_bytes > cap:
        return None
    if content.total_compressed_bytes is not None or content.exception() is not None:
        return None
    return content.read_nowait()


async def read_body(request: web.Request, cap: int) -> bytes:
    """The whole body, at most `cap` bytes (413 past it, without reading the rest)."""
    length = request.content_length
    if length is not None:
        if length > cap:
            raise _too_large(cap)
        try:
            return await request.content.readexactly(length)
        except asyncio.IncompleteReadError:
            raise Malformed("the body ended before its Content-Length") from None
    buf = bytearray()  # chunked transfer: no length announced
    async for chunk in request.content.iter_chunked(CHUNK):
        buf += chunk
        if len(buf) > cap:
            raise _too_large(cap)
    return bytes(buf)


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
    and discarded as it streams in. The whole body is held to `cap`."""
    if request.content_length is not None and request.content_length > cap:
        raise _too_large(cap)
    try:
        reader = MultipartReader(request.headers, request.content)
    except (ValueError, AssertionError, KeyError) as exc:
        raise Malformed(f"not a multipart body: {exc}") from None
    total = 0
    kept: list[Part] = []
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
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
    ) as exc:
        raise Malformed(f"malformed multipart body: {exc}") from None
    return kept
