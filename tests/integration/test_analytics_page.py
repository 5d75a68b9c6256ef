"""Analytics & Reporting and the CSV/PDF exports, on SQLite and PostgreSQL, with Temporal unreachable.

A small seeded world is described once as data (TUTORS, SESSIONS, PREDICTIONS) and the expected figures are
worked out from that description here, in plain Python (the inactivity rule, weekdays from datetime.date), not by
the code under test: population, churn, risk, the heatmap's cells, the cohorts and the predicted churners.
"""
from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.main import create_app
from core.config import Settings
from domain.audit.models import AuditLog
from domain.feedback.models import StudentFeedback
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor
from tests.factories import intervention_row
from tests.integration.web_auth import make_user, sign_in

TODAY = datetime.now(UTC).date()
AS_OF = TODAY - timedelta(days=1)  # a finished UTC day: the period ends at today's midnight
DAYS = 30
INACTIVE = 14  # rules/scoring.yaml population.inactive_after_days
FORMULA_NAME = '=HYPERLINK("http://evil.example")'
# tutor id -> (name, onboarded this many days before AS_OF, listed subjects)
TUTORS = {
    "t_a": ('Lee, Amy "AJ"', 200, ["Algebra"]),
    "t_b": ("Ben Churner", 100, ["Algebra", "Physics"]),
    "t_c": (FORMULA_NAME, 10, ["Physics"]),
    "t_d": ("Dee Veteran", 400, ["Physics"]),
    "t_e": ("Eve Gone", 50, ["Algebra"]),
    "t_f": ("Fay Future", -1, ["Algebra"]),  # onboarded after AS_OF: in no figure as of AS_OF
}
# (session id, tutor, subject, days before AS_OF (negative: after it), session number, quick rating, no-show,
#  tutor reschedule, detailed feedback rating)
SESSIONS = [
    ("s1", "t_a", "Algebra", 2, 3, 5.0, False, False, None),
    ("s2", "t_a", "Algebra", 20, 1, 4.0, False, False, None),
    ("s3", "t_a", "Algebra", -1, 4, 1.0, True, False, None),  # today: after the period
    ("s4", "t_b", "Physics", 25, 1, None, True, False, None),
    ("s5", "t_b", "Algebra", 18, 2, 2.0, False, True, 5),  # the detailed feedback's 5 wins over the quick 2
    ("s6", "t_d", "Physics", 3, 5, 3.0, False, False, None),
    ("s7", "t_e", "Algebra", 40, 1, 5.0, False, False, None),  # before the period
    ("s8", "t_f", "Algebra", -1, 1, 5.0, False, False, None),
]
# (tutor, days before AS_OF, rule score, rule risk level, 30-day model probability)
PREDICTIONS = [
    ("t_a", 5, 20.0, "Low", None), ("t_a", 1, 70.0, "High", None), ("t_a", -1, 10.0, "Low", None),
    ("t_b", 2, 90.0, "Critical", None),
    ("t_c", 0, 30.0, "Low", 0.8),  # the model's 80% puts t_c among the predicted churners despite a Low rule level
    ("t_d", 0, 80.0, "Critical", 0.3),  # at risk by the rule level; the model's 30% keeps t_d off the predicted list
]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def at(days_before: int, hour: int = 10) -> datetime:
    return datetime.combine(AS_OF - timedelta(days=days_before), time(hour), tzinfo=UTC)


# --- the expected figures, from the description above ------------------------------------------------------

def expected(days: int = DAYS, subject: str | None = None) -> dict:
    known = {t: v for t, v in TUTORS.items() if v[1] >= 0}
    in_period = [s for s in SESSIONS if s[1] in known and 0 <= s[3] < days and (subject is None or s[2] == subject)]
    churned = {t for t, (_, onboarded, _) in known.items()
               if onboarded >= INACTIVE and not any(s[1] == t and 0 <= s[3] < INACTIVE for s in SESSIONS)}
    population = {s[1] for s in in_period} | {t for t, (_, onboarded, subs) in known.items()
                                              if onboarded < days and (subject is None or subject in subs)}
    latest = {}
    for tutor, before, score, level, p30 in sorted(PREDICTIONS, key=lambda p: -p[1]):
        if before >= 0:
            latest[tutor] = (score, level, p30)
    at_risk = {t for t in population - churned if t in latest and latest[t][1] in ("High", "Critical")}
    cells: dict[tuple[str, str], set[str]] = defaultdict(set)
    for _sid, tutor, subj, before, *_rest in in_period:
        cells[(subj, WEEKDAYS[(AS_OF - timedelta(days=before)).weekday()])].add(tutor)
    candidates = {t for t, (_, _, subs) in known.items() if subject is None or subject in subs
                  or any(s[1] == t and s[2] == subject for s in in_period)} - churned
    predicted = [t for t in candidates if t in latest
                 and (latest[t][2] * 100 > 50 if latest[t][2] is not None else latest[t][1] in ("High", "Critical"))]
    predicted.sort(key=lambda t: (-(latest[t][2] if latest[t][2] is not None else -1), -latest[t][0]))
    return {"population": population, "churned": churned & population, "at_risk": at_risk, "cells": cells,
            "predicted": predicted, "sessions": in_period}


def pct(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}%}"


# --- the world ---------------------------------------------------------------------------------------------

def _seed(db: Session) -> None:
    db.add(Student(student_id="st1", name="Alex Student"))
    for tid, (name, onboarded, subjects) in TUTORS.items():
        db.add(Tutor(tutor_id=tid, name=name, email=f"{tid}@example.test", subjects=subjects,
                     onboarding_date=AS_OF - timedelta(days=onboarded)))
    db.flush()
    for sid, tid, subject, before, number, quick, no_show, resched, feedback in SESSIONS:
        db.add(TutoringSession(session_id=sid, tutor_id=tid, student_id="st1", session_number=number,
                               scheduled_start=at(before), actual_start=None if no_show else at(before),
                               duration_minutes=0 if no_show else 60, subject=subject, no_show=no_show,
                               tutor_initiated_reschedule=resched, student_rating=quick))
    db.flush()
    for sid, tid, *_rest, feedback in SESSIONS:
        if feedback is not None:
            db.add(StudentFeedback(feedback_id=f"fb_{sid}", session_id=sid, student_id="st1", tutor_id=tid,
                                   overall_rating=feedback, submitted_at=at(0)))
    for tid, before, score, level, p30 in PREDICTIONS:
        db.add(ChurnPrediction(tutor_id=tid, prediction_date=AS_OF - timedelta(days=before), as_of=at(before, 0),
                               churn_score=score, risk_level=level, window_30day_probability=p30,
                               model_version="test"))
    # Effectiveness: two retention interviews for High-risk tutors in the period (one acted on and completed),
    # one older case outside it.
    db.add_all([
        intervention_row("iv-done", "t_a", "retention_interview", recommended=at(6), risk_level="High",
                         owner_role="people_ops", first_action_at=at(5), status="completed", completed_date=at(4),
                         outcome="improved"),
        intervention_row("iv-open", "t_d", "retention_interview", recommended=at(2), risk_level="High",
                         owner_role="people_ops", due_date=at(-3)),
        intervention_row("iv-old", "t_b", "retention_interview", recommended=at(60), risk_level="High",
                         owner_role="people_ops", status="cancelled"),
    ])
    db.commit()


@pytest.fixture
def world(engine: Engine, settings: Settings) -> Iterator[tuple[TestClient, Engine]]:
    with Session(engine) as db:
        _seed(db)
    for role in ("ops_manager", "people_ops", "admin"):
        make_user(engine, role)
    make_user(engine, "tutor", tutor_id="t_a")
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    with TestClient(app, base_url="https://testserver") as client:
        yield client, engine


def _as(world: tuple[TestClient, Engine], role: str) -> TestClient:
    client, engine = world
    client.cookies.clear()
    with Session(engine, expire_on_commit=False) as db:
        from domain.users.models import User
        sign_in(client, engine, db.get(User, f"u_{role}"))
    return client


def _text(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)<', html, re.S)
    assert match, element_id
    return match.group(1).strip()


def _heatmap(html: str) -> dict[tuple[str, str], str]:
    table = html.split('id="heatmap"', 1)[1].split("</table>", 1)[0]
    cells = {}
    for subject, row in re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', table, re.S):
        for cls, day, share, base in re.findall(
                r'<td class="(heat-[\w]+)" data-day="(\w+)">([^<]+)<span class="base">of (\d+)</span>', row):
            cells[(subject, day)] = f"{share} of {base} {cls}"
    return cells


def _cohort(html: str, table_id: str, label: str) -> list[str]:
    """A cohort row's cells after its label: tutors, churn rate, (churned), at-risk share, (at risk), mean score,
    sessions per tutor, no-show rate, reschedule rate, average rating, first-session success."""
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    row = table.split(f'data-cohort="{label}"', 1)[1].split("</tr>", 1)[0].split("</th>", 1)[1]
    return re.sub(r"<[^>]+>", " ", row).split()


# --- tests -------------------------------------------------------------------------------------------------

def test_page_shows_figures_computed_from_stored_data(world):
    client = _as(world, "ops_manager")
    html = client.get("/analytics", params={"as_of": AS_OF.isoformat()}).text
    want = expected()
    assert want["population"] == {"t_a", "t_b", "t_c", "t_d"} and want["churned"] == {"t_b"}  # the seed's intent
    n = len(want["population"])
    assert _text(html, "an-population") == str(n)
    assert _text(html, "an-churn") == pct(len(want["churned"]) / n)
    assert _text(html, "an-at-risk") == pct(len(want["at_risk"]) / (n - len(want["churned"])))
    assert _text(html, "an-predicted") == str(len(want["predicted"]))

    shown = _heatmap(html)
    for (subject, day), tutors in want["cells"].items():
        churned = len(tutors & want["churned"])
        assert shown[(subject, day)].startswith(f"{churned / len(tutors):.0%} of {len(tutors)} heat-"), (subject, day)
    empty = [key for key in shown if key not in want["cells"]]
    assert all(shown[key] == "— of 0 heat-none" for key in empty) and len(shown) == 7 * 2  # Algebra, Physics

    # Tenure cohorts at AS_OF: t_c under 30 days, t_b 90-179, t_a 180-364, t_d a year or more.
    assert _cohort(html, "tenure-table", "90-179 days") == [  # t_b: churned, so neither at risk nor scored
        "1", "100.0%", "(1)", "—", "(0)", "—", "2.0", "50.0%", "50.0%", "5.00", "—"]
    assert _cohort(html, "tenure-table", "180-364 days") == [  # t_a: s1 (quick 5), s2 (a first session, 4)
        "1", "0.0%", "(0)", "100.0%", "(1)", "70.0", "2.0", "0.0%", "0.0%", "4.50", "100.0%"]
    new = _cohort(html, "cohort-table", "Under 30 days")
    tenured = _cohort(html, "cohort-table", "30 days or more")
    assert new[:2] == ["1", "0.0%"] and tenured[:5] == ["3", pct(1 / 3), "(1)", "100.0%", "(2)"]
    ratings = [s[8] if s[8] is not None else s[5] for s in want["sessions"] if s[5] is not None or s[8]]
    assert tenured[-2] == f"{sum(ratings) / len(ratings):.2f}" == "4.25"  # s5 counts 5 (feedback), not its quick 2

    predicted = html.split('id="predicted-table"', 1)[1].split("</table>", 1)[0]
    assert [f"/tutors/{t}" for t in want["predicted"]] == re.findall(r'href="(/tutors/[^"]+)"', predicted)
    assert want["predicted"] == ["t_c", "t_a"] and "80%" in predicted and "no model score" in predicted
    assert "&#34;AJ&#34;" in predicted or "&quot;AJ&quot;" in predicted  # names are escaped, not raw

    effect = html.split('id="effect-table"', 1)[1].split("</tfoot>", 1)[0]
    row = re.sub(r"<[^>]+>", " ", effect.split("Retention Interview", 1)[1].split("</tr>", 1)[0]).split()
    assert row[:5] == ["High", "2", "50%", "(1/2)", "100%"]  # the older, cancelled case is outside the period
    assert 'data-chart-config=' in html and '<script src="/static/charts.js"' in html and "style=" not in html


def test_filters_and_bad_values(world):
    client = _as(world, "people_ops")
    html = client.get("/analytics", params={"as_of": AS_OF.isoformat(), "subject": "Physics"}).text
    want = expected(subject="Physics")
    assert _text(html, "an-population") == str(len(want["population"])) == "3"  # t_b, t_c (joined), t_d
    assert {subject for subject, _ in _heatmap(html)} == {"Physics"}
    assert _cohort(html, "cohort-table", "30 days or more")[6] == "1.0"  # 2 Physics sessions over t_b and t_d
    week = client.get("/analytics", params={"as_of": AS_OF.isoformat(), "days": 7, "measure": "at_risk"}).text
    assert _text(week, "an-population") == str(len(expected(days=7)["population"])) == "2"
    assert "At-risk share" in week.split('id="heatmap-head"', 1)[1].split("</h2>", 1)[0]
    assert 'class="error"' not in week

    bad = client.get("/analytics", params={"days": "abc", "as_of": "2999-01-01", "measure": "x", "new_days": "45",
                                           "subject": "Nope"})
    assert bad.status_code == 200  # as the queue page: a stale or edited link falls back to the defaults ...
    alert = bad.text.split('role="alert"', 1)[1].split("</div>", 1)[0]
    for field in ("days", "as_of", "measure", "new_days", "subject"):  # ... and says which field it reset
        assert f"<code>{field}</code>" in alert
    assert f'value="{TODAY.isoformat()}"' in bad.text and 'name="days" value="30"' in bad.text

    for params, field in (({"days": "0"}, "days"), ({"as_of": "yesterday"}, "as_of"), ({"subject": "Nope"}, "subject"),
                          ({"new_days": "7"}, "new_days")):
        for path in ("/analytics.csv", "/analytics.pdf"):
            refused = client.get(path, params=params)
            assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", field], path


def test_csv_and_pdf_downloads(world):
    client = _as(world, "admin")
    params = {"as_of": AS_OF.isoformat()}
    page = client.get("/analytics", params=params).text
    assert f'href="/analytics.csv?as_of={AS_OF.isoformat()}"' in page and "Download PDF report" in page

    got = client.get("/analytics.csv", params=params)
    assert got.status_code == 200 and got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == f'attachment; filename="tutorpulse-analytics-{AS_OF}.csv"'
    assert got.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(got.text)))
    summary = {r[0]: r[1] for r in rows if len(r) == 2}
    want = expected()
    assert summary["Tutors in the period"] == str(len(want["population"]))
    heat = {(r[0], r[1]): r for r in rows if len(r) == 8 and r[1] in WEEKDAYS}
    for (subject, day), tutors in want["cells"].items():
        churned = len(tutors & want["churned"])
        assert heat[(subject, day)][2:5] == [str(len(tutors)), str(churned), str(round(churned / len(tutors), 4))]
    names = [r[1] for r in rows if len(r) == 8 and r[0] in TUTORS]
    assert names == ["'" + FORMULA_NAME, 'Lee, Amy "AJ"']  # injection neutralised; quotes and comma survive
    assert '"Lee, Amy ""AJ"""' in got.text and "\r\n" in got.text

    pdf = client.get("/analytics.pdf", params=params)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and b"%%EOF" in pdf.content[-32:]
    assert b"/Title (TutorPulse analytics)" in pdf.content  # the document's title (tests/unit/test_pdf reads pages)
    assert pdf.headers["content-disposition"] == f'attachment; filename="tutorpulse-analytics-{AS_OF}.pdf"'


def test_staff_only(world):
    client, engine = world
    client.cookies.clear()
    for path in ("/analytics", "/analytics.csv", "/analytics.pdf", "/queue.csv", "/admin/audit.csv", "/admin/users.csv"):
        anonymous = client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login"), path
    tutor = _as(world, "tutor")
    for path in ("/analytics", "/analytics.csv", "/analytics.pdf", "/queue.csv", "/admin/audit.csv"):
        assert tutor.get(path).status_code == 403, path
    ops = _as(world, "ops_manager")
    assert ops.get("/analytics").status_code == 200
    assert ops.get("/admin/users.csv").status_code == 403 and ops.get("/admin/audit.csv").status_code == 403
    with Session(engine) as db:  # every analytics read was audited as a read of tutor risk data
        paths = [r.details.get("path") for r in db.execute(select(AuditLog).where(
            AuditLog.resource_type == "tutor_risk")).scalars()]
    assert paths.count("/analytics") == 1


def test_queue_and_admin_csv(world):
    client, engine = world
    ops = _as(world, "ops_manager")
    page = ops.get("/queue", params={"scope": "all", "status": "all"}).text
    assert 'href="/queue.csv?scope=all&amp;status=all"' in page
    rows = list(csv.reader(io.StringIO(ops.get("/queue.csv", params={"scope": "all", "status": "all"}).text)))
    assert rows[0][:3] == ["Tutor id", "Tutor", "Risk level"]
    assert sorted(r[-1] for r in rows[1:]) == ["iv-done", "iv-old", "iv-open"]
    open_rows = list(csv.reader(io.StringIO(ops.get("/queue.csv", params={"scope": "all"}).text)))[1:]
    assert [r[-1] for r in open_rows] == ["iv-open"] and open_rows[0][1] == "Dee Veteran"
    refused = ops.get("/queue.csv", params={"status": "everything"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "status"]
    assert _as(world, "people_ops").get("/queue.csv", params={"scope": "all"}).status_code == 403

    admin = _as(world, "admin")
    assert 'id="users-csv"' in admin.get("/admin/users").text and 'id="audit-csv"' in admin.get("/admin/audit").text
    users = admin.get("/admin/users.csv", params={"role": "tutor"})
    rows = list(csv.reader(io.StringIO(users.text)))
    assert users.headers["content-disposition"] == f'attachment; filename="tutorpulse-accounts-{TODAY}.csv"'
    assert [r[0] for r in rows[1:]] == ["u_tutor"] and "argon2" not in users.text
    assert admin.get("/admin/users.csv", params={"role": "wizard"}).status_code == 422

    audit = admin.get("/admin/audit.csv", params={"resource_type": "tutor_risk"})
    rows = list(csv.reader(io.StringIO(audit.text)))
    assert rows[0][0] == "When (UTC)" and {r[3] for r in rows[1:]} == {"tutor_risk"}
    assert sum('"/queue.csv"' in r[6] for r in rows[1:]) == 4  # the four queue downloads above, each audited
    assert admin.get("/admin/audit.csv", params={"since": "soon"}).status_code == 422
    with Session(engine) as db:
        exports = db.execute(select(AuditLog).where(AuditLog.resource_type.in_(("audit_log", "user")),
                                                    AuditLog.actor == "u_admin")).scalars().all()
    vias = sorted((r.resource_type, r.details.get("via")) for r in exports if r.details.get("via") in ("csv",))
    assert vias == [("audit_log", "csv"), ("user", "csv")]  # the refused downloads left no row
    again = list(csv.reader(io.StringIO(admin.get("/admin/audit.csv", params={"resource_type": "audit_log"}).text)))
    assert any('"via": "csv"' in r[6] for r in again[1:])  # the first export is listed by the next one
