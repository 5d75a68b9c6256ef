"""The pages under accounts: Home, the queue and the rules pages, each behind its Policy; KPIs API alongside.

Runs on SQLite and PostgreSQL (the migrated `engine` fixture) with Temporal unreachable. Signed-in sessions come
from tests/integration/web_auth.py; the sign-in form itself is tests/integration/test_login.py's.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from domain.audit.models import AuditLog
from domain.feedback.models import StudentFeedback
from domain.interventions.models import Intervention, InterventionStatus
from domain.rulesets import service as ruleset_service
from domain.rulesets.models import RuleVersion
from domain.scoring.models import ChurnPrediction, RiskLevel
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tutors.models import Tutor, TutorStatus
from domain.users.models import User
from tests.integration.web_auth import csrf_tokens, make_user, sign_in

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


def _tutor(tid: str, name: str, onboarded_days_ago: int, status: TutorStatus = TutorStatus.active) -> Tutor:
    return Tutor(tutor_id=tid, name=name, email=f"{tid}@example.com",
                 onboarding_date=(NOW - onboarded_days_ago * DAY).date(), status=status)


def _session(sid: str, tid: str, number: int, days_ago: float, *, rating: float | None = None,
             no_show: bool = False) -> TutoringSession:
    start = NOW - days_ago * DAY
    return TutoringSession(session_id=sid, tutor_id=tid, student_id="s1", session_number=number, scheduled_start=start,
                           actual_start=None if no_show else start, duration_minutes=0 if no_show else 60,
                           subject="Algebra", no_show=no_show, student_rating=rating)


def _prediction(tid: str, days_ago: int, score: float, level: RiskLevel, **extra) -> ChurnPrediction:
    return ChurnPrediction(tutor_id=tid, prediction_date=(NOW - days_ago * DAY).date(), as_of=NOW - days_ago * DAY,
                           churn_score=score, risk_level=level, model_version="test-1", **extra)


def _task(iid: str, tid: str, kind_: str, *, status=InterventionStatus.pending, due=None, **extra) -> Intervention:
    return Intervention(intervention_id=iid, tutor_id=tid, intervention_type=extra.pop("type_", "retention_interview"),
                        kind=kind_, trigger_reason=extra.pop("reason", "Churn score 82 (Critical)"),
                        recommended_date=NOW - DAY, owner_role="people_ops", status=status, due_date=due,
                        rules_version="v1", rules_hash="h", **extra)


def _seed(db: Session) -> None:
    db.add_all([
        # Active: t1, t2, t3 (t3 joined 10 days ago). Before the window and not churned: t1, t2 -> change +1.
        _tutor("t1", "Jane Doe", 100), _tutor("t2", "John Smith", 100), _tutor("t3", "Amy Lee", 10),
        _tutor("t4", "Old Churner", 200, TutorStatus.churned),
        Student(student_id="s1", name="Alex"),
    ])
    db.flush()
    db.add_all([
        # Last 30 days: 8 sessions, 2 no-shows -> 25.0%. Rated first sessions s1 (feedback 2 beats quick 5),
        # s2 (4), s4 (feedback 5); s3 unrated -> 2 of 3 -> 67%.
        _session("s1", "t1", 1, 2, rating=5), _session("s2", "t2", 1, 3, rating=4), _session("s3", "t3", 1, 4),
        _session("s4", "t1", 1, 5), _session("s5", "t1", 2, 6, no_show=True), _session("s6", "t2", 2, 7, no_show=True),
        _session("s7", "t3", 3, 8, rating=3), _session("s8", "t1", 3, 9),
        # Previous 30 days: 5 sessions, 1 no-show -> 20%; first sessions 2 of 2 -> 100%.
        _session("p1", "t1", 1, 40, rating=5), _session("p2", "t2", 1, 45, rating=5),
        _session("p3", "t1", 2, 50, no_show=True), _session("p4", "t2", 2, 55), _session("p5", "t4", 4, 35, rating=3),
        # Outside both windows: in the future, and 70 days ago.
        _session("f1", "t1", 4, -1, no_show=True), _session("o1", "t1", 1, 70, rating=1, no_show=True),
    ])
    db.flush()
    db.add_all([
        StudentFeedback(feedback_id="fb1", session_id="s1", student_id="s1", tutor_id="t1", overall_rating=2,
                        is_first_session=True, submitted_at=NOW - 2 * DAY),
        StudentFeedback(feedback_id="fb4", session_id="s4", student_id="s1", tutor_id="t1", overall_rating=5,
                        is_first_session=True, submitted_at=NOW - 5 * DAY),
        _prediction("t1", 40, 45, RiskLevel.medium),
        _prediction("t1", 1, 82, RiskLevel.critical,
                    flags=[{"name": "no_show_risk", "summary": "3 no-shows in 7 days", "evidence": {"session_ids": ["s9"]}}],
                    contributing_factors={"engagement_decline": {"score": 70, "contribution": 21.0},
                                          "pattern_no_show_risk": {"score": 100, "contribution": 25.0},
                                          "reschedule_pattern": {"score": 60, "contribution": 15.4},
                                          "rating_trend": {"score": 20, "contribution": 4.0}}),
        _prediction("t2", 5, 75, RiskLevel.critical), _prediction("t2", 1, 68, RiskLevel.high),
        _prediction("t3", 1, 12, RiskLevel.low),
        _prediction("t4", 3, 95, RiskLevel.critical),  # churned: neither at risk nor an alert
        _task("i-overdue", "t1", "human", due=NOW - timedelta(hours=2)),
        _task("i-escalated", "t2", "human", status=InterventionStatus.in_progress, due=NOW + DAY,
              escalated_at=NOW - timedelta(hours=1), escalated_to_role="ops_manager", type_="coaching_session",
              reason="5 reschedules in 14 days"),
        _task("i-done", "t3", "human", status=InterventionStatus.completed, type_="pip_check_in",
              completed_date=NOW - DAY),
        _task("i-auto", "t3", "automated", type_="automated_coaching", reason="First session rated 2"),
    ])
    db.commit()


@pytest.fixture
def world(engine: Engine, settings: Settings) -> Iterator[tuple[TestClient, Engine]]:
    with Session(engine) as db:
        _seed(db)
    for role in ("ops_manager", "people_ops", "admin"):
        make_user(engine, role, name=f"{role.replace('_', ' ').title()} Person")
    make_user(engine, "tutor", tutor_id="t1")
    # Port 1 is closed: every Temporal call fails, as when the server is down.
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    # https: the session cookie is Secure (settings.cookie_secure).
    with TestClient(app, base_url="https://testserver") as client:
        yield client, engine


@pytest.fixture
def client(world: tuple[TestClient, Engine]) -> TestClient:
    """Signed in as the ops manager."""
    client, engine = world
    sign_in(client, engine, _user(engine, "u_ops_manager"))
    return client


def _user(engine: Engine, user_id: str) -> User:
    with Session(engine, expire_on_commit=False) as db:
        return db.get(User, user_id)


def _card(html: str, key: str) -> str:
    match = re.search(rf'<li class="kpi" id="kpi-{key}">(.*?)</li>', html, re.S)
    assert match, key
    return re.sub(r"\s+", " ", match.group(1))


def _task_row(html: str, iid: str) -> str:
    at = html.index(f'data-intervention="{iid}"')
    return html[html.rindex("<tr", 0, at):html.index("</tr>", at)]


def _row(engine, iid: str) -> Intervention:  # noqa: ANN001
    with Session(engine) as db:
        return db.get(Intervention, iid)


def test_home_shows_kpis_alerts_and_queue(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.text
    assert '<meta http-equiv="refresh" content="15">' in html
    total = _card(html, "total_tutors")
    assert ">3<" in total and "+1" in total and 'change good' in total
    at_risk = _card(html, "at_risk_tutors")
    assert "2 (66.7%)" in at_risk and "+2" in at_risk and "change bad" in at_risk
    first = _card(html, "first_session_success")
    assert ">67%<" in first and "-33.3 pts" in first and "change bad" in first
    no_show = _card(html, "no_show_rate")
    assert ">25.0%<" in no_show and "+5.0 pts" in no_show and "change bad" in no_show

    assert "Critical alerts (1)" in html and "High risk (1)" in html
    critical = html.split('id="critical-heading"')[1].split('id="high-heading"')[0]
    assert "Jane Doe" in critical and "Churn score: <strong>82</strong>" in critical
    assert "No show risk: 3 no-shows in 7 days" in critical
    assert "engagement decline contributed 21 of 82" in critical
    assert "reschedule pattern contributed 15 of 82" in critical and "rating trend" not in critical
    assert "pattern no show risk" not in critical and "s9" not in critical  # said once, in words, not as raw ids
    assert "Retention Interview" in critical
    assert "Old Churner" not in html and "John Smith" not in critical
    assert "Coaching Session" in html.split('id="high-heading"')[1]
    assert 'href="/queue" id="queue-link">View all 2 open tasks' in html
    assert NOW.strftime("%d %B %Y") in html


def test_alert_without_open_task_recommends_review(client, world):
    engine = world[1]
    with Session(engine) as db:
        db.get(Intervention, "i-overdue").status = InterventionStatus.cancelled
        db.commit()
    critical = client.get("/").text.split('id="critical-heading"')[1].split('id="high-heading"')[0]
    assert "Review profile" in critical


def test_api_lists_interventions_with_filters_and_pages(client):
    body = client.get("/api/v1/interventions").json()
    assert body["total"] == 3 and (body["limit"], body["offset"]) == (50, 0)
    assert {i["intervention_id"] for i in body["items"]} == {"i-overdue", "i-escalated", "i-auto"}
    assert body["items"][0]["intervention_id"] == "i-escalated" and body["items"][0]["tutor_name"] == "John Smith"
    human = client.get("/api/v1/interventions", params={"kind": "human"}).json()
    assert human["total"] == 2 and [i["intervention_id"] for i in human["items"]] == ["i-escalated", "i-overdue"]
    everything = client.get("/api/v1/interventions", params={"status": "all"}).json()
    assert everything["total"] == 4
    automated = client.get("/api/v1/interventions", params={"kind": "automated", "status": "all"}).json()
    assert [i["intervention_id"] for i in automated["items"]] == ["i-auto"]
    page = client.get("/api/v1/interventions", params={"kind": "human", "limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [i["intervention_id"] for i in page["items"]] == ["i-overdue"]
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"status": "closed"}, {"kind": "robot"}):
        assert client.get("/api/v1/interventions", params=bad).status_code == 422, bad


def test_api_kpis(client):
    body = client.get("/api/v1/kpis").json()
    kpis = {k["key"]: k for k in body["kpis"]}
    assert list(kpis) == ["total_tutors", "at_risk_tutors", "first_session_success", "no_show_rate"]
    assert (kpis["total_tutors"]["raw"], kpis["total_tutors"]["change_raw"], kpis["total_tutors"]["good"]) == (3, 1, True)
    assert (kpis["at_risk_tutors"]["raw"], kpis["at_risk_tutors"]["change_raw"]) == (2, 2)
    assert kpis["first_session_success"]["raw"] == pytest.approx(2 / 3)
    assert kpis["first_session_success"]["change_raw"] == pytest.approx(-33.3)
    assert kpis["no_show_rate"]["raw"] == pytest.approx(0.25) and kpis["no_show_rate"]["good"] is False
    # As of 31 days ago only the then-previous window has sessions; the future session still does not count.
    earlier = client.get("/api/v1/kpis", params={"as_of": (NOW - 31 * DAY).isoformat()}).json()
    rates = {k["key"]: k["raw"] for k in earlier["kpis"]}
    assert rates["no_show_rate"] == pytest.approx(1 / 5) and rates["first_session_success"] == pytest.approx(1.0)
    assert rates["at_risk_tutors"] == 0


# --- accounts on the pages -------------------------------------------------------------------------------------

def _nav(html: str) -> list[str]:
    nav = html.split('<nav aria-label="Main">')[1].split("</nav>")[0]
    return re.findall(r'<a href="([^"]+)"', nav)


def _assert_no_inline_css_or_js(html: str) -> None:
    # Served with style-src 'self' and script-src 'self': inline blocks and attributes would be blocked.
    # Scripts load from /static (<script src=...>); a <script> without src is inline.
    inline_scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html and " style=" not in html and not inline_scripts, "inline CSS/JS on a page"


def _every_post_form_has(html: str, token: str) -> None:
    forms = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', html, re.S)
    assert forms
    for form in forms:
        assert f'name="csrf_token" value="{token}"' in form, form[:200]


def test_nav_shows_what_the_role_may_open_and_who_is_signed_in(world):
    client, engine = world
    pages = {"u_ops_manager": ["/", "/queue", "/analytics", "/account", "/api/docs"],
             "u_people_ops": ["/", "/queue", "/analytics", "/account", "/api/docs"],
             "u_admin": ["/", "/queue", "/analytics", "/rules", "/admin/users", "/admin/audit", "/account",
                         "/api/docs"],
             "u_tutor": ["/portal", "/portal/feedback", "/portal/resources", "/account"]}
    for user_id, links in pages.items():
        user = _user(engine, user_id)
        token = sign_in(client, engine, user)
        html = client.get("/account").text
        assert _nav(html) == links, user_id
        assert f'<strong id="signed-in-name">{user.name}</strong>' in html
        assert f"Signed in as <strong>{user.name}</strong>" in html
        _every_post_form_has(html, token)  # the header's sign-out form and the page's own
        assert 'action="/logout"' in html


def test_home_and_queue_for_staff_with_csrf_on_every_form(client, world):
    engine = world[1]
    token = sign_in(client, engine, _user(engine, "u_people_ops"))
    home = client.get("/")
    assert home.status_code == 200
    _assert_no_inline_css_or_js(home.text)
    page = client.get("/queue")
    assert page.status_code == 200
    html = page.text
    _assert_no_inline_css_or_js(html)
    # The signed-in account acts: no "acting as" picker, but the assignee picker lists the active staff.
    assert "user-picker" not in html and 'action="/queue/user"' not in html
    assert 'data-intervention="i-overdue"' in html and 'action="/queue/i-overdue/claim"' in html
    assert "My role (People Ops)" in html
    # Assigning, approving and cancelling are managers' (the workflow refuses anyone else): not offered here.
    assert 'name="assignee"' not in html and "/cancel" not in html and "/approve" not in html
    assert "u_tutor" not in html
    _every_post_form_has(html, token)
    assert set(csrf_tokens(html)) == {token}
    assert client.get("/queue?scope=all").status_code == 403  # a People Ops account may not list every role
    manager = TestClient(client.app)
    manager_token = sign_in(manager, engine, _user(engine, "u_ops_manager"))
    html = manager.get("/queue?scope=all").text
    assert '<option value="u_ops_manager">Ops Manager Person (Ops Manager)</option>' in html
    assert 'action="/queue/i-overdue/cancel"' in html and "u_tutor" not in html
    _every_post_form_has(html, manager_token)


def test_queue_post_needs_the_sessions_csrf_token(client, world):
    engine = world[1]
    token = sign_in(client, engine, _user(engine, "u_people_ops"))
    refused = client.post("/queue/i-overdue/claim", data={"back": ""})
    assert refused.status_code == 403 and "CSRF" in refused.text
    other = sign_in(TestClient(client.app), engine, _user(engine, "u_ops_manager"))  # another session's token
    assert client.post("/queue/i-overdue/claim", data={"back": "", "csrf_token": other}).status_code == 403
    # With its own token the post reaches the workflow, which is unreachable here: the row says so.
    down = client.post("/queue/i-overdue/claim", data={"back": "", "csrf_token": token})
    assert down.status_code == 503 and "Temporal is unreachable" in _task_row(down.text, "i-overdue")
    bad = client.post("/queue/i-overdue/complete", data={"outcome": "great", "back": "", "csrf_token": token})
    assert bad.status_code == 422 and "Choose an outcome" in _task_row(bad.text, "i-overdue")
    assert _row(engine, "i-overdue").status == "pending"


def test_pages_refuse_other_roles_and_anonymous(world):
    client, engine = world
    anonymous = client.get("/queue?risk=High", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/queue%3Frisk%3DHigh"
    post = client.post("/queue/i-overdue/claim", data={"back": ""}, follow_redirects=False)
    assert post.status_code == 303 and post.headers["location"] == "/login"
    assert client.get("/rules", follow_redirects=False).headers["location"] == "/login?next=/rules"
    assert client.get("/api/v1/kpis").status_code == 401  # under /api: JSON, not a redirect

    sign_in(client, engine, _user(engine, "u_ops_manager"))
    refused = client.get("/rules")
    assert refused.status_code == 403 and "Not allowed" in refused.text and "ops_manager" in refused.text
    assert _nav(refused.text) == ["/", "/queue", "/analytics", "/account", "/api/docs"]  # knows who is asking
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and "Not found" in missing.text
    assert client.get("/api/v1/no-such").json() == {"detail": "Not Found"}


def test_rules_pages_are_admin_only_and_record_the_signed_in_admin(world, settings):
    client, engine = world
    with session_scope(engine) as db:
        ruleset = ruleset_service.seed(db, rules_dir=settings.rules_dir)
        content = ruleset_service.get_active(db, ruleset).content
    token = sign_in(client, engine, _user(engine, "u_admin"))
    index = client.get("/rules")
    assert index.status_code == 200 and f'href="/rules/{ruleset}"' in index.text
    page = client.get(f"/rules/{ruleset}").text
    _assert_no_inline_css_or_js(page)
    assert 'name="author"' not in page and "Saved and published as Admin Person (u_admin)" in page
    _every_post_form_has(page, token)

    draft = {"content": content, "action": "save"}
    assert client.post(f"/rules/{ruleset}/draft", data=draft).status_code == 403  # no CSRF token
    saved = client.post(f"/rules/{ruleset}/draft", data={**draft, "csrf_token": token, "author": "mallory"})
    assert saved.status_code == 200 and "Saved by u_admin" in saved.text and "mallory" not in saved.text
    published = client.post(f"/rules/{ruleset}/draft", data={**draft, "action": "publish", "csrf_token": token},
                            follow_redirects=False)
    assert published.status_code == 303
    version = client.get(published.headers["location"]).text
    assert "<dt>Author</dt><dd>u_admin</dd>" in version
    _assert_no_inline_css_or_js(version)
    _every_post_form_has(version, token)
    with Session(engine) as db:
        row = db.execute(select(RuleVersion).where(RuleVersion.ruleset == ruleset, RuleVersion.status == "active")
                         ).scalar_one()
        audit = db.execute(select(AuditLog).where(AuditLog.resource_type == "rule_version")).scalars().all()
    assert row.author == "u_admin" and [a.actor for a in audit] == ["u_admin"]
    missing = client.get(f"/rules/{ruleset}/versions/99")
    assert missing.status_code == 404
    _assert_no_inline_css_or_js(missing.text)
