"""`tutorpulse import sessions FILE.csv`: an external session log, mapped, checked and ingested on SQLite and
PostgreSQL. The command runs in-process (parsed by the real `tutorpulse` parser) except for one subprocess
run of the console script that checks the exit codes a shell sees."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from cli.importer import import_sessions
from cli.main import build_parser
from core.config import Settings
from core.db import session_scope
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from tests.factories import seed_people

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE, MAPPING = DATA / "external_sessions.csv", DATA / "external_sessions_mapping.yaml"
ROOT = Path(__file__).resolve().parents[2]

HEADER = "Lesson,Tutor,Student,Start Time,Minutes,Course\n"
ROWS = ["X-1,tutor_1,student_1,2026-03-02T10:00:00+00:00,60,Algebra",
        "X-2,tutor_1,student_1,2026-03-09T10:00:00+00:00,60,Algebra",
        "X-3,tutor_2,student_2,2026-03-10T10:00:00+00:00,45,Physics",  # line 4 of the file
        "X-4,tutor_2,student_3,2026-03-11T10:00:00+00:00,45,Physics"]
SIMPLE_MAP = ["--map", "session_id=Lesson", "--map", "tutor_id=Tutor", "--map", "student_id=Student",
              "--map", "scheduled_start=Start Time", "--map", "duration_minutes=Minutes", "--map", "subject=Course"]


def run(settings: Settings, *argv: str | Path) -> int:
    args = build_parser().parse_args(["import", "sessions", *map(str, argv)])
    return import_sessions(args, settings=settings)


def sessions(engine: Engine) -> dict[str, TutoringSession]:
    with session_scope(engine) as db:
        return {s.session_id: s for s in db.execute(select(TutoringSession)).scalars()}


def count(engine: Engine, table: type) -> int:
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(table)).scalar_one()


def write_csv(tmp_path: Path, rows: list[str], name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_mapped_log_imports_every_session_and_a_rerun_creates_nothing(engine: Engine, settings: Settings,
                                                                      capsys: pytest.CaptureFixture) -> None:
    seed_people(engine)
    assert run(settings, SAMPLE, "--mapping", MAPPING, "--batch", "4") == 0
    out = capsys.readouterr().out
    assert "batch 3: rows read 10/10, created 10, existing 0, skipped 0" in out  # progress per batch
    assert "created 10 sessions, 0 already stored" in out
    assert "tutorpulse evaluate all --as-of 2026-03-17T00:00:00+00:00" in out  # the log ended in the past
    stored = sessions(engine)
    assert len(stored) == 10
    # Naive times are America/New_York (mapping file): before and after the 8 March 2026 DST change.
    assert stored["L-1001"].scheduled_start == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert stored["L-1002"].scheduled_start == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    assert stored["L-1004"].actual_start == datetime(2026, 3, 4, 10, 5, tzinfo=UTC)  # its own offset kept
    # yes/no, YES/NO, 1/0, true/false, y/n; "One-on-one" and "1:1" are 1-on-1; empty cells take the defaults.
    assert (stored["L-1003"].no_show, stored["L-1003"].actual_start, stored["L-1003"].student_rating) == (True, None, None)
    assert stored["L-1003"].session_type == "1-on-1" and stored["L-1004"].session_type == "group"
    assert stored["L-1006"].technical_issues is True and stored["L-1006"].learning_objectives_met is False
    assert stored["L-1007"].learning_objectives_met is True and stored["L-1008"].student_rating == 4.5
    assert stored["L-1001"].student_feedback_text == "Good start,\nreviewed homework"  # a quoted multi-line cell
    # session_number: per pair by start, though L-1002 comes before L-1001 in the file.
    assert [stored[s].session_number for s in ("L-1001", "L-1002", "L-1007", "L-1003", "L-1009")] == [1, 2, 3, 1, 1]

    assert run(settings, SAMPLE, "--mapping", MAPPING) == 0
    assert "created 0 sessions, 10 already stored" in capsys.readouterr().out
    assert len(sessions(engine)) == 10 and count(engine, Tutor) == 2


def test_evaluate_all_scores_the_imported_tutors_without_temporal(engine: Engine, settings: Settings) -> None:
    from cli.evaluate import evaluate_all
    from domain.scoring.models import ChurnPrediction

    assert run(settings, SAMPLE, "--mapping", MAPPING, "--create-missing") == 0
    assert evaluate_all(settings, as_of=datetime(2026, 3, 17, tzinfo=UTC)) == 2  # the command the import prints
    with session_scope(engine) as db:
        scored = db.execute(select(ChurnPrediction.tutor_id, ChurnPrediction.churn_score)).all()
    assert sorted(t for t, _ in scored) == ["tutor_1", "tutor_2"] and all(0 <= s <= 100 for _, s in scored)


def test_a_bad_timestamp_refuses_the_file_naming_line_and_column(engine: Engine, settings: Settings,
                                                                   capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    seed_people(engine)
    bad = write_csv(tmp_path, [*ROWS[:2], ROWS[2].replace("2026-03-10T10:00:00+00:00", "2026-02-30 10:00"), ROWS[3]])
    assert run(settings, bad, *SIMPLE_MAP) == 1
    err = capsys.readouterr().err
    assert "REFUSED" in err and "nothing was written" in err
    assert "line 4, column 'Start Time': not a timestamp: '2026-02-30 10:00'" in err
    assert count(engine, TutoringSession) == 0

    assert run(settings, bad, *SIMPLE_MAP, "--skip-bad") == 0
    captured = capsys.readouterr()
    assert "line 4, column 'Start Time'" in captured.err and "created 3 sessions" in captured.out
    assert sorted(sessions(engine)) == ["X-1", "X-2", "X-4"]


def test_row_problems_name_line_column_and_problem(engine: Engine, settings: Settings,
                                                   capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    seed_people(engine)
    rows = [ROWS[0].replace(",60,", ",sixty,"), ROWS[1].replace("2026-03-09T10:00:00+00:00", "2026-03-09 10:00"),
            ROWS[2].replace("student_2", "nobody"), ROWS[3], ROWS[3].replace("45", "50"), ROWS[3]]
    assert run(settings, write_csv(tmp_path, rows), *SIMPLE_MAP) == 1
    err = capsys.readouterr().err
    assert "line 2, column 'Minutes': not a whole number: 'sixty'" in err
    assert "line 3, column 'Start Time': timestamp '2026-03-09 10:00' has no UTC offset" in err
    assert "line 4, column 'Student': unknown student_id 'nobody'" in err
    assert "line 6, column 'Lesson': session_id 'X-4' is already on line 5 with different values" in err
    assert "line 7" not in err  # an exact repeat of a row is stored once, not an error
    assert count(engine, TutoringSession) == 0


def test_session_numbers_continue_from_stored_sessions(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    seed_people(engine)
    assert run(settings, write_csv(tmp_path, ROWS[:2], "first.csv"), *SIMPLE_MAP) == 0
    later = ["X-5,tutor_1,student_1,2026-03-16T10:00:00+00:00,60,Algebra",
             "X-6,tutor_1,student_2,2026-03-16T11:00:00+00:00,60,Algebra",
             "X-7,tutor_1,student_1,2026-03-05T10:00:00+00:00,60,Algebra"]  # between the stored
    assert run(settings, write_csv(tmp_path, later, "second.csv"), *SIMPLE_MAP) == 0
    numbers = {k: s.session_number for k, s in sessions(engine).items()}
    # Stored rows keep their numbers (insert-if-absent); new ones take their place in the pair's history.
    assert numbers == {"X-1": 1, "X-2": 2, "X-5": 4, "X-6": 1, "X-7": 2}

    given = tmp_path / "given.csv"
    given.write_text(HEADER.replace("\n", ",No\n") + "X-8,tutor_2,student_1,2026-03-20T10:00:00+00:00,60,Algebra,7\n")
    assert run(settings, given, *SIMPLE_MAP, "--map", "session_number=No") == 0
    assert sessions(engine)["X-8"].session_number == 7  # a column that gives the number is used as is


def test_create_missing_creates_minimal_tutors_and_students(engine: Engine, settings: Settings,
                                                          capsys: pytest.CaptureFixture) -> None:
    assert run(settings, SAMPLE, "--mapping", MAPPING) == 1
    err = capsys.readouterr().err
    assert "2 unknown tutor_id value(s): tutor_1, tutor_2" in err and "--create-missing" in err
    assert count(engine, Tutor) == 0 and count(engine, TutoringSession) == 0

    assert run(settings, SAMPLE, "--mapping", MAPPING, "--create-missing") == 0
    assert "created 2 tutors and 3 students" in capsys.readouterr().out
    with session_scope(engine) as db:
        tutor = db.get(Tutor, "tutor_1")
        student = db.get(Student, "student_2")
        assert (tutor.name, tutor.email, tutor.status) == ("tutor_1", "tutor_1@import.invalid", "active")
        assert tutor.onboarding_date == date(2026, 3, 2)  # its first session, not the file's first row (L-1002)
        assert tutor.subjects == ["Algebra", "Chemistry"] and student.name == "student_2"
    assert count(engine, TutoringSession) == 10


def test_dry_run_writes_nothing_and_reports_what_it_would_do(engine: Engine, settings: Settings,
                                                             capsys: pytest.CaptureFixture) -> None:
    assert run(settings, SAMPLE, "--mapping", MAPPING, "--create-missing", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "DRY RUN, nothing written" in out and "would create 10 sessions" in out
    assert "would create 2 tutors and 3 students" in out
    assert (count(engine, TutoringSession), count(engine, Tutor), count(engine, Student)) == (0, 0, 0)


def test_mapping_problems_stop_before_any_row(settings: Settings, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    log = write_csv(tmp_path, ROWS)
    assert run(settings, log, *SIMPLE_MAP, "--map", "subject=Topic") == 2
    assert "column 'Topic' (mapped to subject) is not in the CSV header" in capsys.readouterr().err
    assert run(settings, log, "--map", "tutor_id=Tutor") == 2
    assert "no column for required field(s) session_id, student_id" in capsys.readouterr().err
    assert run(settings, log, *SIMPLE_MAP, "--map", "colour=Course") == 2
    assert "unknown session field(s) 'colour'" in capsys.readouterr().err
    assert run(settings, log, *SIMPLE_MAP, "--timezone", "Mars/Olympus") == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_console_script_exit_codes(db_url: str, engine: Engine, tmp_path: Path) -> None:
    seed_people(engine)
    exe = Path(sys.executable).parent / "tutorpulse"

    def cli(*argv: str | Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), "import", "sessions", *map(str, argv)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "DATABASE_URL": db_url})

    bad = write_csv(tmp_path, [*ROWS[:2], ROWS[2].replace(",45,", ",-5,")])
    refused = cli(bad, *SIMPLE_MAP)
    assert refused.returncode == 1 and "line 4, column 'Minutes'" in refused.stderr
    ok = cli(SAMPLE, "--mapping", MAPPING)
    assert ok.returncode == 0, ok.stderr
    assert "created 10 sessions" in ok.stdout and count(engine, TutoringSession) == 10
