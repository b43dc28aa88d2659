"""The process's log: what may reach it, whoever writes.

Varco's own messages are written not to hold a plate, key, token or request body. Other
libraries make no such promise: aiohttp logs a malformed request with its bytes (a Bearer key,
a URL token, a plate), asyncio logs the repr of a failed task, a warning may quote a header.
So every record passes `Redact` on its way to the handler:

- a record of another library keeps its logger, level and time, and the kind of exception it
  carries, but its text is withheld: the library's message may quote what a client sent;
- an exception's traceback keeps its frames (file, line, code) but not the exception's
  message, whoever logs it: `KeyError('AB123CD')` is logged as `KeyError`.

`configure` is called once per process (the `varco` command, each worker) before anything logs.
"""

from __future__ import annotations

import logging
import traceback
from typing import Final

OWN: Final = frozenset({"varco", "enforcement", "loader", "deploy", "bench"})
WITHHELD: Final = "(text withheld: it may quote request data)"


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] not in OWN:
            record.msg, record.args = WITHHELD, None
            record.stack_info = None
        if record.exc_info and record.exc_info[0] is not None:
            kind, _, tb = record.exc_info
            frames = "".join(traceback.format_tb(tb)) if tb is not None else ""
            record.exc_text = f"Traceback (most recent call last):\n{frames}{kind.__name__}"
            record.exc_info = None  # the formatter prints exc_text as it is
        return True


def configure(fmt: str, level: int = logging.INFO) -> None:
    """The root handler, with `Redact`; Python's warnings logged (and so redacted) too."""
    logging.basicConfig(level=level, format=fmt)
    redact = Redact()
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    logging.captureWarnings(True)
