"""Failpoints: named places where a fault test makes a real process die, to prove that a crash
there leaves nothing half-done. Set VARCO_FAILPOINT=<name> in one process's environment; a
deployment never sets it, and an unset variable costs one dict lookup on a rare path."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def hit(name: str) -> None:
    """Die here, as SIGKILL would (no cleanup, no flush), when the failpoint `name` is set."""
    if os.environ.get("VARCO_FAILPOINT") == name:
        log.warning("failpoint %s: exiting abruptly", name)
        os._exit(137)
