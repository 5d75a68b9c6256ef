"""One CSV record -> one SessionIn, or the problems that name its line and column."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from pydantic import ValidationError

from domain.imports.mapping import KINDS, ResolvedMapping
from domain.sessions.models import SessionIn

TRUE = frozenset({"true", "t", "yes", "y", "1"})
FALSE = frozenset({"false", "f", "no", "n", "0"})
# Exports spell the two session types many ways; these are the ones seen in practice.
SESSION_TYPES = {"1-on-1": "1-on-1", "1:1": "1-on-1", "one-on-one": "1-on-1", "1on1": "1-on-1",
                 "individual": "1-on-1", "private": "1-on-1", "group": "group"}
# Before derivation fills it in; SessionIn requires a value >= 1.
PLACEHOLDER_NUMBER = 1


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column '{self.column}'" if self.column else "")
        return f"{where}: {self.problem}"


@dataclass(frozen=True)
class ParsedRow:
    line: int
    item: SessionIn


class CellError(ValueError):
    pass


def _bool(text: str) -> bool:
    low = text.lower()
    if low in TRUE:
        return True
    if low in FALSE:
        return False
    raise CellError(f"not a yes/no value: '{text}' (use yes/no, true/false or 1/0)")


def _int(text: str) -> int:
    try:
        number = float(text)
    except ValueError:
        raise CellError(f"not a whole number: '{text}'") from None
    if not number.is_integer():  # "45.0" from a spreadsheet is fine, "45.5" minutes is not
        raise CellError(f"not a whole number: '{text}'")
    return int(number)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CellError(f"not a number: '{text}'") from None


def _timestamp(text: str, *, zone: tzinfo | None, fmt: str | None) -> datetime:
    try:
        value = datetime.strptime(text, fmt) if fmt else datetime.fromisoformat(text)
    except ValueError:
        expected = f"format {fmt}" if fmt else "ISO 8601, e.g. 2026-03-01T14:00:00+00:00"
        raise CellError(f"not a timestamp: '{text}' (expected {expected})") from None
    if value.tzinfo is None:
        if zone is None:
            raise CellError(f"timestamp '{text}' has no UTC offset; say which zone it is in with --timezone")
        value = value.replace(tzinfo=zone)
    return value


def _session_type(text: str) -> str:
    found = SESSION_TYPES.get(text.lower())
    if found is None:
        raise CellError(f"unknown session type '{text}' (expected 1-on-1 or group)")
    return found


def parse_record(line: int, record: Sequence[str], resolved: ResolvedMapping) -> ParsedRow | list[RowProblem]:
    zone, fmt = resolved.mapping.zone(), resolved.mapping.timestamp_format
    values: dict[str, object] = {}
    problems: list[RowProblem] = []
    failed: set[str] = set()
    for target, index in resolved.index.items():
        text = record[index].strip()
        if not text:
            continue  # an empty cell is an absent value: the field's default, or "required" below
        try:
            kind = KINDS[target]
            if kind == "bool":
                values[target] = _bool(text)
            elif kind == "int":
                values[target] = _int(text)
            elif kind == "float":
                values[target] = _float(text)
            elif kind == "timestamp":
                values[target] = _timestamp(text, zone=zone, fmt=fmt)
            elif kind == "session_type":
                values[target] = _session_type(text)
            else:
                values[target] = text
        except CellError as exc:
            failed.add(target)
            problems.append(RowProblem(line, resolved.column[target], str(exc)))
    if resolved.derives_session_number:
        values["session_number"] = PLACEHOLDER_NUMBER
    try:
        item = SessionIn.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            target = str(err["loc"][0]) if err["loc"] else None
            if target in failed:
                continue  # the cell itself did not parse (reported above); pydantic only saw it as missing
            problems.append(RowProblem(line, _column_for(target, err, resolved), _message(target, err)))
        return problems
    return problems or ParsedRow(line=line, item=item)


def _is_missing(err: dict) -> bool:
    return err["type"] == "missing"


def _column_for(target: str | None, err: dict, resolved: ResolvedMapping) -> str | None:
    if target is None:
        # Model-level rules span columns (no_show with an actual start): name the columns involved.
        involved = [t for t in ("no_show", "actual_start") if t in resolved.column and "no_show" in err["msg"]]
        return " / ".join(resolved.column[t] for t in involved) or None
    return resolved.column.get(target, target)


def _message(target: str | None, err: dict) -> str:
    if _is_missing(err):
        return f"{target} is required but the cell is empty"
    msg = str(err["msg"]).removeprefix("Value error, ")
    shown = err.get("input")
    if target is not None and isinstance(shown, str | int | float):
        return f"{target} {msg.lower() if msg[:1].isupper() else msg}: got {shown!r}"
    return msg
