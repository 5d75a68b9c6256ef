"""Parameter types shared by routes. Every integer a caller sends is bounded: an unbounded one reaches the
database driver, which refuses a Python int past 64 bits with a 500 instead of the 422 it deserves."""
from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_OFFSET = 1_000_000
MAX_VERSION = 1_000_000

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A published version's number")]
