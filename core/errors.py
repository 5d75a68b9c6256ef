"""Errors a service raises for bad input; the API turns them into a 422 shaped like FastAPI's own."""
from __future__ import annotations

from typing import Any


class InputError(Exception):
    """Input that parsed but refers to something that does not exist or does not fit.

    ``errors`` follows FastAPI's 422 shape: [{"loc": [...], "msg": str, "type": str}], so a client
    handles a schema error and an unknown id the same way.
    """

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def field_error(loc: list[Any], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}
