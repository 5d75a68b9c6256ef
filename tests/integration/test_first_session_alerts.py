"""Pre-session alerts through the API on SQLite and PostgreSQL: validation (422 naming the field, 404), 503 and
nothing stored without a live model, an alert and a prep reminder at or above the rules' threshold and none
below it, idempotent repeats, 409 for a changed booking, and the staff list with its filters, paging and
acknowledgement. The tutor's reminder never carries a probability or the student's name."""
from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.main import create_app
from cli.main import build_parser
from core.config import Settings
from core.db import get_engine, session_scope
from core.types import utcnow
from domain.first_sessions.models import FirstSessionAlert
from domain.interventions.models import Intervention, OutboxMessage
from domain.model_registry import service as registry
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from domain.users.models import User
from domain.users.service import ensure_demo_staff
from ml.first_session import FEATURES, FirstSessionTable
from ml.first_session_model import FirstSessionModel, train
from synth.backfill import backfill
from tests.auth import as_role, bearer

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
THRESHOLD = 0.5
NEW_TUTOR, VETERAN = "fs_new_tutor", "fs_veteran"
STUDENT_NAME = "Philippa Quennell-Marsh"


@pytest.fixture(scope="module")
def model() -> FirstSessionModel:
    """A real first-session model, trained on made-up first sessions in which only tenure matters (a new tutor's
    first sessions mostly go badly), so the two bookings below fall on either side of the threshold."""
    rng = np.random.default_rng(11)
    n = 3000
    tenure = rng.uniform(0, 720, n)
    poor = rng.random(n) < 1 / (1 + np.exp(-(2.5 - tenure / 30)))
    X = np.empty((n, len(FEATURES)), dtype=object)
    X[:, 0] = tenure
    X[:, 1] = np.where(rng.random(n) < 0.2, np.nan, rng.uniform(3.5, 5, n))
    X[:, 2] = rng.integers(0, 200, n).astype(float)
    X[:, 3] = rng.uniform(0, 1, n)
    X[:, 4] = rng.uniform(0, 1, n)
    X[:, 5] = rng.integers(0, 40, n).astype(float)
    X[:, 6] = rng.uniform(8, 18, n)
    X[:, 7] = rng.choice(["00-04h UTC", "16-20h UTC"], n)
    X[:, 8] = rng.choice(["Mon", "Fri"], n)
    X[:, 9] = rng.choice(["Mathematics", "Physics"], n)
    starts = np.datetime64("2026-01-01T00", "s") + rng.integers(0, 60 * 86400, n).astype("timedelta64[s]")
    table = FirstSessionTable(keys=np.arange(n).astype(str).astype(object), tutor_ids=np.full(n, "t", dtype=object),
                              starts=starts, X=X, ratings=np.where(poor, 2.0, 4.5))
    return train(table, poor_below=3, threshold=THRESHOLD, c_grid=[1.0], min_sessions=300, min_poor=10).model


@pytest.fixture
def app_settings(settings: Settings, tmp_path: Path) -> Settings:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    path = rules / "first_session.yaml"
    text = path.read_text()
    assert "alert_threshold: 0.40" in text
    path.write_text(text.replace("alert_threshold: 0.40", f"alert_threshold: {THRESHOLD}"))
    return settings.model_copy(update={"rules_dir": rules, "models_dir": tmp_path / "models",
                                       "temporal_address": "127.0.0.1:1"})


def _seed(engine: Engine) -> None:
    today = utcnow().date()
    with session_scope(engine) as db:
        for tutor_id, onboarded in ((NEW_TUTOR, today - timedelta(days=1)), (VETERAN, date(2024, 1, 8))):
            db.add(Tutor(tutor_id=tutor_id, name=tutor_id, email=f"{tutor_id}@example.test", onboarding_date=onboarded,
                         subjects=["Mathematics"]))
        db.add(Student(student_id="fs_student", name=STUDENT_NAME, age=14, grade_level="Grade 9",
                       subjects_interested=["Mathematics"]))
        db.add(Student(student_id="fs_student_2", name="Other Student", age=None, grade_level="Grade 4",
                       subjects_interested=["Mathematics"]))
        db.add(User(user_id="u_fs_tutor", email="fs_tutor@example.test", name="New Tutor", role="tutor", tutor_id=NEW_TUTOR))
        ensure_demo_staff(db)
        db.flush()
        # The veteran has met fs_student_2 before: a booking of that pair is not a first session.
        db.add(TutoringSession(session_id="fs_past", tutor_id=VETERAN, student_id="fs_student_2", session_number=1,
                               scheduled_start=utcnow() - timedelta(days=3), duration_minutes=60, subject="Mathematics",
                               student_rating=4.5))


def _live(engine: Engine, model: FirstSessionModel, settings: Settings) -> str:
    now = utcnow()
    with session_scope(engine) as db:
        row = registry.register(db, kind="first_session", model=model, features=list(FEATURES), params={"C": 1.0},
                                metrics={}, criterion=0.9, data_start=date(2026, 1, 1), data_end=date(2026, 3, 1),
                                label_source="rating", training_rows=3000, models_dir=settings.models_dir, now=now)
        registry.promote(db, row.version, decision={"reason": "test"}, now=now)
        return row.version


def _counts(engine: Engine) -> tuple[int, int, int]:
    with session_scope(engine) as db:
        return tuple(db.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (FirstSessionAlert, Intervention, OutboxMessage))


def body(booking_id: str, tutor: str = NEW_TUTOR, student: str = "fs_student", **kw: object) -> dict:
    start = kw.pop("start", utcnow() + timedelta(days=1, hours=2))
    return {"booking_id": booking_id, "tutor_id": tutor, "student_id": student, "subject": "Mathematics",
            "scheduled_start": start.isoformat() if isinstance(start, datetime) else start, **kw}


def _locs(r: httpx.Response) -> list[list]:
    return [e["loc"] for e in r.json()["detail"]]


async def test_pre_session_alerts(engine: Engine, app_settings: Settings, model: FirstSessionModel) -> None:
    _seed(engine)
    app = create_app(app_settings)
    url = "/api/v1/first-sessions/risk"
    staff = bearer(engine, "u_sarah_chen")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp",
                                 headers=as_role(engine, "service")) as api:  # the booking system scores bookings
        # No live model: 503 with what to do, and nothing stored.
        r = await api.post(url, json=body("bk-1"))
        assert r.status_code == 503 and "first-sessions train" in r.json()["detail"]
        assert _counts(engine) == (0, 0, 0)

        version = _live(engine, model, app_settings)

        # Validation: 422 naming the field, 404 for unknown people; none of them stores anything.
        r = await api.post(url, json={k: v for k, v in body("bk-x").items() if k != "scheduled_start"})
        assert r.status_code == 422 and ["body", "scheduled_start"] in _locs(r)
        r = await api.post(url, json=body("bk-x", start="2026-12-01T10:00:00"))  # no zone
        assert r.status_code == 422 and ["body", "scheduled_start"] in _locs(r)
        r = await api.post(url, json=body("bk-x", start=utcnow() - timedelta(minutes=1)))
        assert r.status_code == 422 and _locs(r) == [["body", "scheduled_start"]] and "future" in r.text
        r = await api.post(url, json=body("", tutor=""))
        assert r.status_code == 422 and {("body", "booking_id"), ("body", "tutor_id")} <= {tuple(x) for x in _locs(r)}
        r = await api.post(url, json=body("bk-x", tutor=VETERAN, student="fs_student_2"))
        assert r.status_code == 422 and _locs(r) == [["body", "student_id"]] and "not a first session" in r.text
        r = await api.post(url, json=body("bk-x", tutor="nobody"))
        assert r.status_code == 404 and "tutor" in r.json()["detail"]
        r = await api.post(url, json=body("bk-x", student="nobody"))
        assert r.status_code == 404 and "student" in r.json()["detail"]
        assert _counts(engine) == (0, 0, 0)

        # A new tutor's first session: above the threshold -> an open alert and a prep reminder.
        high = await api.post(url, json=body("bk-1"))
        assert high.status_code == 201, high.text
        h = high.json()
        assert h["status"] == "created" and h["alert"] and h["alert_status"] == "open"
        assert h["probability"] >= THRESHOLD and h["threshold"] == THRESHOLD and h["model_version"] == version
        assert h["rules_version"] == "first_session_alerts@v1" and h["reminder_id"]
        assert h["factors"] and h["factors"][0]["feature"] == "tenure_days" and "raises the risk" in h["factors"][0]["text"]
        assert h["summary"] == f"This first session has {h['probability']:.0%} risk of a poor rating. A prep reminder was sent to the tutor."
        assert _counts(engine) == (1, 1, 1)

        # A veteran's: below it -> scored and kept (for repeats), no alert, no reminder.
        low = await api.post(url, json=body("bk-2", tutor=VETERAN))
        assert low.status_code == 201
        lo = low.json()
        assert not lo["alert"] and lo["alert_status"] == "below_threshold" and lo["reminder_id"] is None
        assert lo["probability"] < THRESHOLD
        assert _counts(engine) == (2, 1, 1)

        # Repeats: the same answer, nothing new; the same id with other details is a conflict.
        again = await api.post(url, json=body("bk-1", start=h_start(engine, "bk-1")))
        assert again.status_code == 200 and again.json() == {**h, "status": "existing"}
        r = await api.post(url, json={**body("bk-1", start=h_start(engine, "bk-1")), "subject": "Physics"})
        assert r.status_code == 409 and "subject" in r.json()["detail"]
        assert _counts(engine) == (2, 1, 1)

        # The tutor's reminder: no probability, no risk, no student name.
        notes = await api.get("/api/v1/me/notifications", headers=bearer(engine, "u_fs_tutor"))
        assert notes.status_code == 200 and len(notes.json()) == 1
        note = notes.json()[0]
        text = (note["subject"] + " " + note["body"]).lower()
        p = h["probability"]
        for shown in (f"{p:.2f}", f"{p:.1f}", f"{p:.0%}", f"{round(p * 100)}", "risk", "probab",
                      STUDENT_NAME.lower(), STUDENT_NAME.split()[0].lower(), "fs_student"):
            assert shown not in text, shown
        assert "first session with a new student" in text and "checklist" in text
        with session_scope(engine) as db:
            case = db.get(Intervention, h["reminder_id"])
            assert case.tutor_id == NEW_TUTOR and case.intervention_type == "first_session_prep"
            assert case.status == "completed" and case.kind == "automated"
            assert STUDENT_NAME not in case.trigger_reason and f"{p:.2f}" not in case.trigger_reason

        # Staff list: open, upcoming, soonest first; filters and paging; tutors and anonymous callers refused.
        alerts = "/api/v1/first-sessions/alerts"
        assert (await api.get(alerts)).status_code == 403  # the booking system scores bookings; alerts are for staff
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp") as anonymous:
            assert (await anonymous.get(alerts)).status_code == 401
        assert (await api.get(alerts, headers=bearer(engine, "u_fs_tutor"))).status_code == 403
        listed = (await api.get(alerts, headers=staff)).json()
        assert listed["total"] == 1 and [a["alert_id"] for a in listed["items"]] == ["bk-1"]
        assert listed["items"][0]["student_id"] == "fs_student" and listed["items"][0]["probability"] == p
        assert listed["items"][0]["summary"] == h["summary"]
        later = await api.post(url, json=body("bk-3", student="fs_student_2", start=utcnow() + timedelta(days=2)))
        assert later.json()["alert"]
        page = (await api.get(alerts, headers=staff, params={"limit": 1, "offset": 1})).json()
        assert page["total"] == 2 and [a["alert_id"] for a in page["items"]] == ["bk-3"]
        assert (await api.get(alerts, headers=staff, params={"tutor_id": VETERAN})).json()["total"] == 0
        assert (await api.get(alerts, headers=staff, params={"min_probability": 1.0})).json()["total"] == 0
        r = await api.get(alerts, headers=staff, params={"status": "closed"})
        assert r.status_code == 422 and ["query", "status", 0] in _locs(r)

        # Acknowledged alerts leave the default list; a below-threshold booking is not an alert.
        ack = await api.post(f"{alerts}/bk-1/acknowledge", headers=staff)
        assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
        assert ack.json()["acknowledged_by"] == "u_sarah_chen"
        assert [a["alert_id"] for a in (await api.get(alerts, headers=staff)).json()["items"]] == ["bk-3"]
        seen = (await api.get(alerts, headers=staff, params={"status": "acknowledged"})).json()
        assert [a["alert_id"] for a in seen["items"]] == ["bk-1"]
        assert (await api.post(f"{alerts}/bk-2/acknowledge", headers=staff)).status_code == 404
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp") as anonymous:
            assert (await anonymous.post(f"{alerts}/bk-1/acknowledge")).status_code == 401


def h_start(engine: Engine, alert_id: str) -> datetime:
    """The stored start of a booking (a repeat posts exactly the same details)."""
    with session_scope(engine) as db:
        return db.get(FirstSessionAlert, alert_id).scheduled_start.astimezone(UTC)


def test_train_and_score_commands(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tutorpulse first-sessions train` on an engine world: registered, promoted (no live model), and an identical
    retraining refused by champion/challenger; then `score` posts bookings through the alert service."""
    engine = get_engine(settings.database_url)
    report = backfill(engine, days=40, seed=3, n_tutors=20, sessions_per_day=200, progress=lambda _line: None)
    s = settings.model_copy(update={"models_dir": tmp_path / "models"})
    train = build_parser().parse_args(["first-sessions", "train", "--days", "40"])
    assert train.func(train, settings=s) == 0
    out = capsys.readouterr().out
    assert "validation log loss" in out and "odds of a poor first session" in out
    assert "decision: promoted: no live model" in out
    assert train.func(train, settings=s) == 0  # the same data again: no better than the live model
    assert "decision: rejected: candidate AUC" in capsys.readouterr().out
    with session_scope(engine) as db:
        rows = registry.list_versions(db, "first_session")
        live = registry.live_version(db, "first_session")
        assert sorted(r.status for r in rows) == ["live", "rejected"] and live.label_source == "rating"
        assert {"val", "test"} <= set(live.metrics) and live.metrics["test"]["auc"] > 0.5
        assert live.criterion == live.metrics["val"]["auc"] and (s.models_dir / live.path).exists()
        met = set(db.execute(select(TutoringSession.student_id).where(TutoringSession.tutor_id == report.tutor_ids[0])).scalars())
        stranger = db.execute(select(Student.student_id).where(Student.student_id.not_in(met)).limit(1)).scalar_one()

    good = body("cli-1", tutor=report.tutor_ids[0], student=stranger)
    bad = body("cli-2", tutor="nobody")
    path = tmp_path / "bookings.json"
    path.write_text(json.dumps([good, bad]))
    score = build_parser().parse_args(["first-sessions", "score", str(path), "--dry-run"])
    assert score.func(score, settings=s) == 1  # one booking refused
    captured = capsys.readouterr()
    assert "cli-1: created, P(poor)" in captured.out and "dry run: nothing stored" in captured.out
    assert "cli-2: refused: unknown tutor" in captured.err
    assert _counts(engine)[0] == 0
    path.write_text(json.dumps(good))
    score = build_parser().parse_args(["first-sessions", "score", str(path)])
    assert score.func(score, settings=s) == 0
    with session_scope(engine) as db:
        row = db.get(FirstSessionAlert, "cli-1")
        assert row.model_version == live.version and 0 < row.probability < 1
