"""The student's feedback page (/feedback/{token}) over the real app, on SQLite and PostgreSQL.

The form shows what the link's JSON shows and no more, takes a star and Submit, stores once through the API's own
path (same audit row, same 409), answers bad links with 404/410/409 pages and bad answers with a 422 page naming the
field, storing nothing; its CSRF pair is /login's. A poor first session submitted here reaches a real worker on the
Temporal dev server and flags the tutor at once.
"""
from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.audit.models import AuditLog
from domain.feedback import links
from domain.feedback.models import StudentFeedback
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import SessionIn
from domain.sessions.service import ingest_sessions
from domain.tutors.models import Tutor
from tests.factories import seed_people, session_payload
from tests.integration.auth_helpers import api_client, build_app
from tests.integration.pipeline_helpers import eventually
from worker import build_worker

CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def seed_feedback_world(engine: Engine, tag: str) -> dict[str, str]:
    """A tutor "Emily Tran" and student_1: a first session yesterday, a second one, and one in two days."""
    (tutor,) = seed_people(engine, tutors=1, students=1, tag=tag)
    now = utcnow()
    sessions = [session_payload(1, tutor=tutor, at=now - timedelta(days=1)),
                session_payload(2, tutor=tutor, at=now - timedelta(hours=3)),
                session_payload(3, tutor=tutor, at=now + timedelta(days=2))]
    with session_scope(engine) as db:
        db.get(Tutor, tutor).name = "Emily Tran"
        ingest_sessions(db, [SessionIn.model_validate(s) for s in sessions], many=True)
    return {"tutor": tutor, "first": sessions[0]["session_id"], "second": sessions[1]["session_id"],
            "future": sessions[2]["session_id"]}


def _page(session_id: str) -> str:
    return f"/feedback/{links.sign(session_id)[0]}"


def _rows(engine: Engine) -> int:
    with session_scope(engine) as db:
        return db.execute(select(func.count()).select_from(StudentFeedback)).scalar_one()


async def _form(client: httpx.AsyncClient, path: str) -> str:
    """Opens the form as a browser does (its tp_login cookie lands in the client) and returns the CSRF token."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)


async def test_form_shows_the_session_and_stores_the_answers_once(settings: Settings, engine: Engine) -> None:
    w = seed_feedback_world(engine, settings.temporal_task_queue)
    path = _page(w["second"])
    async with api_client(build_app(settings)) as client:
        page = await client.get(path)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        html = page.text
        assert "How was your session with Emily?" in html and "Mathematics" in html
        assert "Tran" not in html and "Student 1" not in html and "student_1" not in html  # first name only
        assert len(re.findall(r'<input type="radio" id="rating-\d" name="rating"', html)) == 5
        assert 'name="work_again"' not in html  # not a first session: no first-session questions
        cookie = page.headers["set-cookie"]
        assert cookie.startswith("tp_login=") and f"Path={path}" in cookie and "HttpOnly" in cookie
        token = CSRF.search(html).group(1)

        answers = {"rating": "4", "patience": "5", "text": "Clear\r\nand kind"}
        refused = await client.post(path, data=answers)  # no CSRF token: refused, answers shown again
        assert refused.status_code == 403 and "open for a long time" in refused.text and "and kind" in refused.text
        other = await _form(client, _page(w["first"]))  # another link's pair does not open this one
        refused = await client.post(path, data={**answers, "csrf_token": other})
        assert refused.status_code == 403 and _rows(engine) == 0
        assert CSRF.search(refused.text).group(1) != token  # each form shown carries a fresh pair

        token = CSRF.search(refused.text).group(1)
        thanks = await client.post(path, data={**answers, "csrf_token": token})
        assert thanks.status_code == 200 and "Thank you for your feedback!" in thanks.text
        assert "sorry" not in thanks.text
        assert 'tp_login=""' in thanks.headers["set-cookie"]  # the pair is spent
        again = await client.get(path)
        assert again.status_code == 409 and "already rated" in again.text
        resubmit = await client.post(path, data={"rating": "1", "csrf_token": token})
        assert resubmit.status_code == 409 and _rows(engine) == 1
    with session_scope(engine) as db:
        row = db.execute(select(StudentFeedback)).scalar_one()
        audit = db.execute(select(AuditLog).where(AuditLog.actor == "anonymous:feedback-link",
                                                  AuditLog.resource_id == f"session_id={w['second']}")
                           .order_by(AuditLog.audit_id)).scalars().all()
    assert (row.session_id, row.overall_rating, row.patience_rating, row.is_first_session) == (w["second"], 4, 5, False)
    assert row.free_text_feedback == "Clear\nand kind"  # one line break, as the browser counted it
    # The form, the answers and the "already rated" page each read or wrote this student's session.
    assert [(a.action, a.details["path"]) for a in audit] == [("read", "/feedback/{token}"),
                                                             ("write", "/feedback/{token}"),
                                                             ("read", "/feedback/{token}")]
    assert all(path.rsplit("/", 1)[1] not in str(a.details) for a in audit)  # the token is a credential


async def test_skip_for_now_stores_nothing_and_the_link_keeps_working(settings: Settings, engine: Engine) -> None:
    w = seed_feedback_world(engine, settings.temporal_task_queue)
    path = _page(w["first"])
    _, expires = links.verify(path.rsplit("/", 1)[1])
    async with api_client(build_app(settings)) as client:
        form = await client.get(path)
        assert f'href="{path}?skip"' in form.text and "Skip for now" in form.text
        later = await client.get(f"{path}?skip")
        assert later.status_code == 200 and later.headers["cache-control"] == "no-store"
        assert "No problem" in later.text and "Nothing was sent" in later.text
        assert f"{expires.day} {expires:%B}" in later.text and f'href="{path}"' in later.text
        assert "Tran" not in later.text
        assert _rows(engine) == 0
        token = await _form(client, path)  # back to the form: still open, and it stores as usual
        thanks = await client.post(path, data={"rating": "5", "work_again": "yes_definitely", "csrf_token": token})
        assert thanks.status_code == 200 and _rows(engine) == 1
        done = await client.get(f"{path}?skip")  # rated: the skip page is gone with the form
        assert done.status_code == 409 and "already rated" in done.text


async def test_bad_links_and_bad_answers_get_pages_and_store_nothing(settings: Settings, engine: Engine) -> None:
    w = seed_feedback_world(engine, settings.temporal_task_queue)
    good = links.sign(w["first"])[0]
    payload, mac = good.split(".")
    expired = links.sign(w["first"], now=utcnow() - timedelta(days=links.LINK_DAYS, seconds=1))[0]
    async with api_client(build_app(settings)) as client:
        for token, status, words in ((f"{payload}.{mac[:-2]}xx", 404, "does not work"), (payload, 404, "does not work"),
                                     ("x" * 500, 404, "does not work"), (expired, 410, "expired")):
            for method in ("GET", "POST"):
                response = await client.request(method, f"/feedback/{token}", data={"rating": "5"})
                assert (response.status_code, words in response.text) == (status, True), (token, method)
        future = _page(w["future"])
        for method in ("GET", "POST"):
            response = await client.request(method, future, data={"rating": "5"})
            assert response.status_code == 409 and "not happened yet" in response.text

        first = f"/feedback/{good}"
        form = await client.get(first)
        assert "How was your first session with Emily?" in form.text
        assert "Would you want to work with Emily again?" in form.text and 'value="Tutor was late"' in form.text
        csrf = CSRF.search(form.text).group(1)
        for answers, message in (
                ({}, "Choose a star rating"), ({"rating": "6"}, "Choose a star rating"),
                ({"rating": "four"}, "Choose a star rating"),
                ({"rating": "4", "text": "x" * 501}, "500 characters or fewer"),
                ({"rating": "4", "patience": "0"}, "Rate patience from 1 to 5"),
                ({"rating": "4", "work_again": "sometimes"}, "Would you want to work with Emily again?"),
                ({"rating": "4", "work_again": "maybe", "improvement_areas": "Technical issues"},
                 "What could have been better?"),
                ({"rating": "4", "student_id": "student_1"}, "“student_id” is not a question")):
            response = await client.post(first, data={**answers, "csrf_token": csrf})
            assert response.status_code == 422, answers
            alert = re.search(r'role="alert".*?</div>', response.text, re.S).group(0)
            assert message in alert and "Nothing was saved" in alert, (answers, alert)
            csrf = CSRF.search(response.text).group(1)  # the form shown again carries a fresh pair
        second = _page(w["second"])
        csrf = await _form(client, second)
        response = await client.post(second, data={"rating": "2", "work_again": "no", "csrf_token": csrf})
        assert response.status_code == 422 and "not your first session" in response.text
    assert _rows(engine) == 0


async def test_a_poor_first_session_flags_the_tutor_at_once(settings: Settings, engine: Engine, temporal_client,
                                                            activity_executor) -> None:  # noqa: ANN001
    w = seed_feedback_world(engine, settings.temporal_task_queue)
    app = create_app(settings)
    app.state.temporal = temporal_client  # the session's dev server, as a deployed API would reach it

    def flags() -> list[str] | None:
        with session_scope(engine) as db:
            row = db.execute(select(ChurnPrediction).where(ChurnPrediction.tutor_id == w["tutor"])).scalar_one_or_none()
            return [f["name"] for f in row.flags] if row else None

    async with build_worker(temporal_client, settings, activity_executor), api_client(app) as client:
        path = _page(w["first"])
        csrf = await _form(client, path)
        assert flags() is None  # nothing has evaluated this tutor: the page's submit is what does
        response = await client.post(path, data={"rating": "1", "work_again": "no", "csrf_token": csrf,
                                                 "improvement_areas": ["Tutor was late", "Technical issues"]})
        assert response.status_code == 200 and "sorry your first session with Emily" in response.text
        found = await eventually(lambda: flags() is not None, what="the tutor's evaluation after the submit")
    assert found and "poor_first_session" in flags()
    with session_scope(engine) as db:
        row = db.execute(select(StudentFeedback)).scalar_one()
    assert (row.overall_rating, row.is_first_session, row.would_recommend) == (1, True, False)
    assert row.improvement_areas == ["Tutor was late", "Technical issues"]
