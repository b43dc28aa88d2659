"""XML from cameras, parsed safely and read without regard to namespaces.

The parser is `defusedxml` with DTDs forbidden: a body with a DOCTYPE, an entity declaration
or an external reference is refused before anything is expanded, so an entity-expansion bomb
("billion laughs") or an external-entity read never runs. Camera firmware differ in the
namespace they put on the same element (`http://www.hikvision.com/ver20/XMLSchema`, `ver10`,
`isapi.org`, none), so elements are looked up by local name only.
"""

from __future__ import annotations

from typing import Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeElementTree

from .body import Malformed

# Leaves beyond this are not read: a camera event has a few dozen.
MAX_LEAVES: Final = 10_000


def parse(data: bytes) -> Element:
    """The document's root element; 400 for a DTD, an entity or XML that is not well formed."""
    try:
        root: Element = SafeElementTree.fromstring(data, forbid_dtd=True)
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
    for i, el in enumerate(root.iter()):
        if i >= MAX_LEAVES:
            break
        name = local_name(el.tag) if isinstance(el.tag, str) else ""
        if name and name not in out and len(el) == 0:
            out[name] = (el.text or "").strip()
    return out
