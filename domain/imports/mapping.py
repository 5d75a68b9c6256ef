"""Which CSV column feeds which session field, and how its text is read.

A mapping comes from a YAML file, from `--map field=column` pairs (which win over the file) and, for every
field left unmapped, from a CSV column carrying the field's own name: a file exported in TutorPulse's shape
needs no mapping at all.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from domain.sessions.models import SessionIn

# How each SessionIn field's text is parsed (see rows.py). Checked against the schema at import, so a field
# added to SessionIn fails loudly here instead of being silently impossible to import.
KINDS: dict[str, str] = {
    "session_id": "str", "tutor_id": "str", "student_id": "str", "session_number": "int",
    "scheduled_start": "timestamp", "actual_start": "timestamp", "duration_minutes": "int", "subject": "str",
    "session_type": "session_type", "tutor_initiated_reschedule": "bool", "no_show": "bool",
    "late_start_minutes": "int", "engagement_score": "float", "student_rating": "float",
    "student_feedback_text": "str", "learning_objectives_met": "bool", "technical_issues": "bool",
}
if set(KINDS) != set(SessionIn.model_fields):
    raise RuntimeError("domain/imports/mapping.py KINDS is out of step with SessionIn's fields")

# Required by SessionIn, except session_number: when no column gives it, the importer derives it.
REQUIRED = tuple(n for n, f in SessionIn.model_fields.items() if f.is_required() and n != "session_number")


class MappingError(ValueError):
    """The mapping cannot be applied to this file at all (as opposed to one bad row)."""


@dataclass(frozen=True)
class ColumnMapping:
    columns: dict[str, str] = field(default_factory=dict)  # session field -> CSV column; "" = do not read
    timezone: str | None = None        # zone for timestamps written without an offset
    timestamp_format: str | None = None  # strptime format; ISO 8601 when absent

    def zone(self) -> ZoneInfo | None:
        if not self.timezone:
            return None
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise MappingError(f"unknown time zone '{self.timezone}' (use an IANA name such as UTC or Europe/Berlin)") from None


def _check_targets(columns: dict[str, str], origin: str) -> None:
    unknown = [t for t in columns if t not in KINDS]
    if unknown:
        raise MappingError(f"{origin}: unknown session field(s) {', '.join(map(repr, unknown))}; "
                           f"fields are {', '.join(KINDS)}")


def load_mapping_file(path: Path) -> ColumnMapping:
    """``columns: {field: column}`` plus optional ``timezone`` and ``timestamp_format``; a flat
    ``{field: column}`` document is accepted too, since that is what people write first."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"cannot read mapping file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise MappingError(f"{path}: expected a mapping with a 'columns' section")
    options = {k: doc.get(k) for k in ("timezone", "timestamp_format")}
    columns = doc.get("columns", None if "columns" in doc else {k: v for k, v in doc.items() if k not in options})
    if not isinstance(columns, dict):
        raise MappingError(f"{path}: 'columns' must map session fields to CSV column names")
    columns = {str(k): "" if v is None else str(v) for k, v in columns.items()}
    _check_targets(columns, str(path))
    return ColumnMapping(columns=columns, **{k: (str(v) if v is not None else None) for k, v in options.items()})


def parse_map_args(pairs: Sequence[str]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip():
            raise MappingError(f"--map {pair!r}: expected FIELD=COLUMN, e.g. --map tutor_id=\"Tutor ID\"")
        columns[target.strip()] = source.strip()
    _check_targets(columns, "--map")
    return columns


def merge(base: ColumnMapping, columns: dict[str, str], *, timezone: str | None = None,
          timestamp_format: str | None = None) -> ColumnMapping:
    """Command-line values over the file's."""
    return ColumnMapping(columns={**base.columns, **columns}, timezone=timezone or base.timezone,
                         timestamp_format=timestamp_format or base.timestamp_format)


@dataclass(frozen=True)
class ResolvedMapping:
    """Field -> index of its column in each record, and the column's name for error messages."""

    index: dict[str, int]
    column: dict[str, str]
    mapping: ColumnMapping

    @property
    def derives_session_number(self) -> bool:
        return "session_number" not in self.index


def resolve(header: Sequence[str], mapping: ColumnMapping) -> ResolvedMapping:
    names = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise MappingError(f"the CSV header names column '{name}' twice (columns {seen[name] + 1} and {i + 1})")
        seen[name] = i
    by_lower = {n.lower(): i for i, n in enumerate(names)}
    index: dict[str, int] = {}
    for target in KINDS:
        source = mapping.columns.get(target)
        if source == "":
            continue  # explicitly not read, e.g. `--map session_number=` to derive it instead
        if source is None:
            if target in by_lower:  # a column already named like the field
                index[target] = by_lower[target]
            continue
        if source not in seen:
            raise MappingError(f"column '{source}' (mapped to {target}) is not in the CSV header; "
                               f"the header has: {', '.join(names)}")
        index[target] = seen[source]
    missing = [t for t in REQUIRED if t not in index]
    if missing:
        raise MappingError("no column for required field(s) " + ", ".join(missing) + "; map each with "
                           + " ".join(f"--map {t}=COLUMN" for t in missing))
    mapping.zone()  # an unknown zone is a mapping problem, reported before any row is read
    return ResolvedMapping(index=index, column={t: names[i] for t, i in index.items()}, mapping=mapping)
