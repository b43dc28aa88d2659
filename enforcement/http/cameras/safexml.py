"""XML from cameras, parsed safely and read without regard to namespaces.

The parser is `defusedxml` with DTDs forbidden: a body with a DOCTYPE, an entity declaration
or an external reference is refused before anything is expanded, so an entity-expansion bomb
("billion laughs") or an external-entity read never runs. Camera firmware differ in the
namespace they put on the same element (`http://www.hikvision.com/ver20/XMLSchema`, `ver10`,
`isapi.org`, none), so elements are looked up by local name only.
"""

from __future__ import annotations

from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from .. import errors
from .body import Malformed

# A camera event has a few dozen elements. A document with more is refused as it is parsed:
# an 8 MB body of a million elements would hold the event loop for over a second.
MAX_ELEMENTS: Final = 10_000
_FEED: Final = 64 * 1024


class _TooMany(Exception):
    pass


class _CountingBuilder(TreeBuilder):
    """ElementTree's builder, stopping the parse at MAX_ELEMENTS."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def start(self, tag: Any, attrs: Any) -> Element:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise _TooMany
        return super().start(tag, attrs)


def parse(data: bytes) -> Element:
    """The document's root element; 400 for a DTD, an entity or XML that is not well formed,
    413 past MAX_ELEMENTS."""
    parser = DefusedXMLParser(target=_CountingBuilder(), forbid_dtd=True)
    try:
        for at in range(0, len(data), _FEED):  # in pieces, so that a refusal comes early
            parser.feed(data[at : at + _FEED])
        root: Element = parser.close()
    except _TooMany:
        raise errors.TooLarge(f"XML with more than {MAX_ELEMENTS} elements") from None
    except DefusedXmlException:
        raise Malformed(
            "XML with a DTD, entity declarations or external references is refused"
        ) from None
    except ParseError as exc:
        raise Malformed(f"body is not well-formed XML: {exc}") from None
    return root


def local_name(tag: str) -> str:
    """`{namespace}name` -> `name`."""
    return tag.rsplit("}", 1)[-1]


def leaves(root: Element) -> dict[str, str]:
    """Local name -> stripped text of the first element of that name, in document order
    (so a top-level `dateTime` wins over one nested deeper in a picture list)."""
    out: dict[str, str] = {}
    for el in root.iter():  # at most MAX_ELEMENTS (parse)
        name = local_name(el.tag) if isinstance(el.tag, str) else ""
        if name and name not in out and len(el) == 0:
            out[name] = (el.text or "").strip()
    return out
