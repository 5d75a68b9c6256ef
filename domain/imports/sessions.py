"""Importing an external session log (CSV) through `domain.sessions.service.ingest_sessions`.

Two phases. `plan_import` reads and checks the whole file (types, schema, repeats inside the file, unknown
tutors and students) and derives session numbers, writing nothing, so a file with a bad row can be refused
before anything is stored. `write_import` then ingests the good rows in batches, one transaction each:
insert-if-absent on session_id, so re-running a file (or finishing one a crash interrupted) creates only
what is missing.
"""
from __future__ import annotations

import csv
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db import session_scope
from core.types import utcnow
from domain.imports.mapping import ColumnMapping, MappingError, resolve
from domain.imports.rows import ParsedRow, RowProblem, parse_record
from domain.sessions.models import SessionIn, TutoringSession
from domain.sessions.service import IN_CHUNK, existing_ids, ingest_sessions
from domain.students.models import Student
from domain.tutors.models import Tutor

Progress = Callable[[str], None]
PLACEHOLDER_EMAIL_DOMAIN = "import.invalid"  # RFC 2606: can never be delivered to


@dataclass
class NewPerson:
    """A tutor or student the file names and TutorPulse does not know (created with --create-missing)."""

    first_seen: datetime
    subjects: set[str] = field(default_factory=set)


@dataclass
class ImportPlan:
    rows_read: int = 0
    record_lines: list[int] = field(default_factory=list)  # start line of every record read, ascending
    items: list[ParsedRow] = field(default_factory=list)  # good rows, file order, session numbers final
    problems: list[RowProblem] = field(default_factory=list)
    bad_lines: set[int] = field(default_factory=set)
    duplicates: int = 0  # rows repeating an earlier row of the file exactly: stored once
    stored_ids: set[str] = field(default_factory=set)  # session ids of the file already in the database
    new_tutors: dict[str, NewPerson] = field(default_factory=dict)
    new_students: dict[str, NewPerson] = field(default_factory=dict)
    derived_numbers: bool = False
    unknown: dict[str, set[str]] = field(default_factory=dict)  # tutor_id / student_id -> ids not in TutorPulse

    @property
    def tutor_ids(self) -> list[str]:
        return sorted({r.item.tutor_id for r in self.items})

    @property
    def latest_start(self) -> datetime | None:
        return max((r.item.scheduled_start for r in self.items), default=None)


@dataclass
class ImportResult:
    created: int = 0
    existing: int = 0
    tutors_created: int = 0
    students_created: int = 0
    batches: int = 0


def read_csv(path: Path, *, delimiter: str = ",") -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and (line number, record) pairs; the line is where the record starts, as an editor shows it.

    utf-8-sig drops the byte-order mark spreadsheet programs put in front of the header.
    """
    handle = path.open(encoding="utf-8-sig", newline="")
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        handle.close()
        raise MappingError(f"{path} is empty: expected a header row")

    def records() -> Iterator[tuple[int, list[str]]]:
        with handle:
            start = reader.line_num + 1
            for record in reader:
                if any(cell.strip() for cell in record):  # blank lines are not rows
                    yield start, record
                start = reader.line_num + 1  # a quoted cell may span lines: the next record starts after it

    return header, records()


def plan_import(db: Session, header: Sequence[str], records: Iterator[tuple[int, list[str]]], *,
                mapping: ColumnMapping, create_missing: bool) -> ImportPlan:
    resolved = resolve(header, mapping)
    plan = ImportPlan(derived_numbers=resolved.derives_session_number)
    first_line: dict[str, tuple[int, SessionIn]] = {}
    id_column = resolved.column["session_id"]
    for line, record in records:
        plan.rows_read += 1
        plan.record_lines.append(line)
        if len(record) != len(header):
            _bad(plan, RowProblem(line, None, f"expected {len(header)} fields like the header, found {len(record)}"))
            continue
        parsed = parse_record(line, record, resolved)
        if isinstance(parsed, list):
            for problem in parsed:
                _bad(plan, problem)
            continue
        seen = first_line.get(parsed.item.session_id)
        if seen is not None:
            if seen[1] == parsed.item:
                plan.duplicates += 1  # exports often repeat rows; an identical repeat is harmless
            else:
                _bad(plan, RowProblem(line, id_column, f"session_id '{parsed.item.session_id}' is already on line "
                                                       f"{seen[0]} with different values"))
            continue
        first_line[parsed.item.session_id] = (line, parsed.item)
        plan.items.append(parsed)
    _check_people(db, plan, resolved.column, create_missing=create_missing)
    plan.stored_ids = existing_ids(db, TutoringSession.session_id, [r.item.session_id for r in plan.items])
    if plan.derived_numbers:
        _derive_session_numbers(db, plan)
    return plan


def _bad(plan: ImportPlan, problem: RowProblem) -> None:
    plan.problems.append(problem)
    plan.bad_lines.add(problem.line)


def _check_people(db: Session, plan: ImportPlan, column: dict[str, str], *, create_missing: bool) -> None:
    """Unknown tutor/student ids become rows to create, or problems on every row that names them."""
    known = {attr: existing_ids(db, id_col, [getattr(r.item, attr) for r in plan.items])
             for attr, id_col in (("tutor_id", Tutor.tutor_id), ("student_id", Student.student_id))}
    kept: list[ParsedRow] = []
    for row in plan.items:
        unknown = [a for a in ("tutor_id", "student_id") if getattr(row.item, a) not in known[a]]
        if unknown and not create_missing:
            for attr in unknown:
                plan.unknown.setdefault(attr, set()).add(getattr(row.item, attr))
                _bad(plan, RowProblem(row.line, column[attr], f"unknown {attr} '{getattr(row.item, attr)}' "
                                                              "(not in TutorPulse; --create-missing creates it)"))
            continue
        for attr, people in (("tutor_id", plan.new_tutors), ("student_id", plan.new_students)):
            if attr in unknown:
                person = people.setdefault(getattr(row.item, attr), NewPerson(first_seen=row.item.scheduled_start))
                person.first_seen = min(person.first_seen, row.item.scheduled_start)
                person.subjects.add(row.item.subject)
        kept.append(row)
    plan.items = kept


def _derive_session_numbers(db: Session, plan: ImportPlan) -> None:
    """session_number = position of the session among its (tutor, student) pair's sessions by scheduled start,
    counting the sessions already stored. Stored rows are never renumbered (ingestion is insert-if-absent), so
    a file holding sessions older than the stored ones can give a number a stored session already has."""
    pairs: dict[tuple[str, str], dict[str, datetime]] = defaultdict(dict)
    for row in plan.items:
        pairs[(row.item.tutor_id, row.item.student_id)][row.item.session_id] = row.item.scheduled_start
    stored: dict[tuple[str, str], dict[str, tuple[datetime, int]]] = defaultdict(dict)
    tutors = sorted({t for t, _ in pairs})
    s = TutoringSession
    for i in range(0, len(tutors), IN_CHUNK):
        rows = db.execute(select(s.tutor_id, s.student_id, s.session_id, s.scheduled_start, s.session_number)
                          .where(s.tutor_id.in_(tutors[i:i + IN_CHUNK]))).all()
        for tutor_id, student_id, session_id, start, number in rows:
            if (tutor_id, student_id) in pairs:
                stored[(tutor_id, student_id)][session_id] = (start, number)
    numbers: dict[str, int] = {}
    for pair, sessions in pairs.items():
        everything = {**sessions, **{sid: start for sid, (start, _) in stored[pair].items()}}
        ranked = sorted(everything, key=lambda sid: (everything[sid], sid))  # ties: a stable, repeatable order
        for position, sid in enumerate(ranked, 1):
            numbers[sid] = stored[pair][sid][1] if sid in stored[pair] else position
    plan.items = [ParsedRow(r.line, r.item.model_copy(update={"session_number": numbers[r.item.session_id]}))
                  for r in plan.items]


def _people_rows(plan: ImportPlan, items: Sequence[SessionIn], now: datetime) -> tuple[list[dict], list[dict]]:
    tutor_ids = dict.fromkeys(i.tutor_id for i in items if i.tutor_id in plan.new_tutors)
    student_ids = dict.fromkeys(i.student_id for i in items if i.student_id in plan.new_students)
    tutors = [{"tutor_id": t, "name": t, "email": f"{t}@{PLACEHOLDER_EMAIL_DOMAIN}",
               "onboarding_date": _utc_date(plan.new_tutors[t].first_seen), "status": "active",
               "subjects": sorted(plan.new_tutors[t].subjects), "created_at": now, "updated_at": now}
              for t in tutor_ids]
    students = [{"student_id": s, "name": s, "subjects_interested": sorted(plan.new_students[s].subjects),
                 "created_at": now, "updated_at": now} for s in student_ids]
    return tutors, students


def _utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _insert_missing(db: Session, table: type, key: str, rows: list[dict]) -> int:
    """Insert-if-absent, so a batch retried after a crash (or a person created meanwhile) is not an error."""
    if not rows:
        return 0
    found = existing_ids(db, getattr(table, key), [r[key] for r in rows])
    fresh = [r for r in rows if r[key] not in found]
    if fresh:
        db.execute(insert(table), fresh)
    return len(fresh)


def write_import(engine: Engine, plan: ImportPlan, *, batch: int, dry_run: bool, progress: Progress,
                 now: datetime | None = None) -> ImportResult:
    """Ingests ``plan.items`` in batches of ``batch`` rows, one transaction each (nothing at all when
    ``dry_run``: the counts are then what the import would do, from ``plan.stored_ids``)."""
    now = now or utcnow()
    result = ImportResult()
    bad = sorted(plan.bad_lines)
    for start in range(0, len(plan.items), batch):
        chunk = plan.items[start:start + batch]
        items = [r.item for r in chunk]
        if dry_run:
            fresh = {i.session_id for i in items} - plan.stored_ids
            result.created += len(fresh)
            result.existing += len(items) - len(fresh)
        else:
            with session_scope(engine) as db:
                tutors, students = _people_rows(plan, items, now)
                result.tutors_created += _insert_missing(db, Tutor, "tutor_id", tutors)
                result.students_created += _insert_missing(db, Student, "student_id", students)
                outcome = ingest_sessions(db, items, many=True, now=now)
            result.created += sum(1 for r in outcome if r.status == "created")
            result.existing += sum(1 for r in outcome if r.status == "existing")
        result.batches += 1
        # Rows read so far: every record up to this batch's last row, or to the end of the file at the last
        # batch (bad rows and repeats after the last good row count too).
        last_line = chunk[-1].line if start + batch < len(plan.items) else plan.record_lines[-1]
        read = bisect_right(plan.record_lines, last_line)
        progress(f"{'dry run ' if dry_run else ''}batch {result.batches}: rows read {read}/{plan.rows_read}, "
                 f"created {result.created}, existing {result.existing}, skipped {bisect_right(bad, last_line)}")
    if dry_run:
        result.tutors_created, result.students_created = len(plan.new_tutors), len(plan.new_students)
    return result
