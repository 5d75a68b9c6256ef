"""The intervention queue API, tutor history, effectiveness and the queue page, on SQLite and PostgreSQL.

Most tests insert intervention rows directly (the read side and the input checks need no workflow) with Temporal
unreachable; the round trips at the end run real HumanTaskWorkflows on the dev server, where the workflow's
validators decide and its activity writes the row.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import Intervention, InterventionEvent
from domain.users import service as user_service
from domain.users.models import User
from rules.interventions import active_intervention_rules
from tests.auth import bearer, sign_in
from tests.factories import intervention_row, seed_people
from workflows.inputs import TaskCommand

SARAH, MARCUS, PRIYA, DANA = "u_sarah_chen", "u_marcus_reed", "u_priya_natarajan", "u_dana_whitfield"
H = timedelta(hours=1)
D = timedelta(days=1)
_iv = intervention_row


_TOKENS: dict[str, dict[str, str]] = {}  # user id -> Authorization headers, issued by _seed_staff for this test's DB


def _who(user: str) -> dict[str, str]:
    return _TOKENS.get(user, {"Authorization": "Bearer not-a-token"})


def _seed_staff(engine: Engine) -> None:
    with session_scope(engine) as db:
        user_service.ensure_demo_staff(db)
        db.add(User(user_id="u_tutor", email="tutor@example.test", name="A Tutor", role="tutor"))
        db.add(User(user_id="u_gone", email="gone@example.test", name="Gone", role="people_ops", is_active=False))
    _TOKENS.clear()
    for user in (SARAH, MARCUS, PRIYA, DANA, "u_tutor", "u_gone"):
        _TOKENS[user] = bearer(engine, user)


@pytest.fixture
def world(engine: Engine, settings: Settings) -> Iterator[tuple[TestClient, Engine, list[str]]]:
    """Staff, three tutors and a queue of cases around the real clock (the queue's overdue/today use it)."""
    t1, t2, t3 = seed_people(engine, tutors=3, students=0)
    _seed_staff(engine)
    now = utcnow()
    tomorrow = datetime.combine(now.date() + D, time.min, tzinfo=UTC)
    rec = now - 3 * D
    with session_scope(engine) as db:
        db.add_all([
            _iv("q-esc", t1, "H1_coaching_session", recommended=rec, owner_role="ops_manager", status="pending",
                escalated_at=now - H, escalated_to_role="people_ops", due_date=now - H, risk_level="Critical"),
            _iv("q-over", t2, "H4_retention_interview", recommended=rec, owner_role="people_ops", status="pending",
                due_date=now - 2 * H, risk_level="High"),
            _iv("q-today", t3, "H4_retention_interview", recommended=rec, owner_role="people_ops", status="pending",
                due_date=now + (tomorrow - now) / 2, risk_level="High"),
            # A program (its own row: extend, cancel) and its kickoff task, which Marcus works.
            _iv("q-prog", t1, "H2_peer_mentoring", kind="program", step="program", recommended=rec - D,
                owner_role="people_ops", status="in_progress", due_date=now + 25 * D, ends_at=now + 25 * D,
                risk_level="Medium"),
            _iv("q-week", t1, "H2_peer_mentoring", step="kickoff", parent_id="q-prog", recommended=rec + H,
                owner_role="people_ops", status="in_progress", assigned_to=MARCUS, due_date=now + 3 * D,
                risk_level="Medium"),
            _iv("q-late", t2, "H5_recognition", recommended=rec, owner_role="people_ops", status="needs_approval",
                requires_approval=True, due_date=now + 10 * D, risk_level="Low"),
            _iv("q-nodue", t3, "H4_retention_interview", recommended=rec - D, owner_role="people_ops",
                status="pending", risk_level="High"),
            _iv("q-mgr", t1, "H1_coaching_session", recommended=rec + 2 * H, owner_role="ops_manager", status="pending",
                due_date=now + D, risk_level="High"),
            _iv("q-done", t2, "H4_retention_interview", recommended=rec - 5 * D, owner_role="people_ops",
                status="completed", outcome="improved", due_date=now - 5 * D, risk_level="High"),
            _iv("q-auto", t3, "A1_coaching_tips", kind="automated", step="message", recommended=rec,
                status="in_progress", risk_level="High"),
            _iv("q-step", t1, "H3_pip", step="checkin", parent_id="q-pip", recommended=now - D,
                owner_role="people_ops", status="pending", assigned_to=PRIYA, due_date=now + 2 * D,
                risk_level="Critical"),
        ])
        db.flush()
        db.add_all([
            InterventionEvent(intervention_id="q-week", revision=1, event="recorded", at=rec),
            InterventionEvent(intervention_id="q-week", revision=2, event="claimed", actor=MARCUS, at=rec + H,
                              detail={"status": "in_progress"}),
        ])
    # Port 1 is closed: every Temporal call fails, as when the server is down.
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    with TestClient(app) as client:
        yield client, engine, [t1, t2, t3]


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [i["intervention_id"] for i in response.json()["items"]]


def _row(engine: Engine, iid: str) -> Intervention:
    with session_scope(engine) as db:
        return db.get(Intervention, iid)


# --- who may call --------------------------------------------------------------------------------------------

def test_callers_must_be_active_staff(world) -> None:  # noqa: ANN001
    client, _, _ = world
    missing = client.get("/api/v1/queue")
    assert missing.status_code == 401 and "Sign in" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/queue", headers=_who("u_nobody")).status_code == 401
    gone = client.get("/api/v1/queue", headers=_who("u_gone"))
    assert gone.status_code == 401 and "unknown, expired or revoked" in gone.json()["detail"]
    tutor = client.get("/api/v1/queue", headers=_who("u_tutor"))
    assert tutor.status_code == 403 and "tutor role may not" in tutor.json()["detail"]
    assert client.post("/api/v1/queue/q-over/claim", headers=_who("u_tutor")).status_code == 403
    assert client.get("/api/v1/queue/q-over", headers=_who("u_tutor")).status_code == 403
    wide = client.get("/api/v1/queue", params={"scope": "all"}, headers=_who(MARCUS))
    assert wide.status_code == 403 and "scope=all" in wide.json()["detail"]
    assert client.get("/api/v1/queue", params={"scope": "all"}, headers=_who(DANA)).status_code == 200


def test_demo_staff_are_created_once(engine: Engine) -> None:
    with session_scope(engine) as db:
        first = user_service.ensure_demo_staff(db)
    with session_scope(engine) as db:
        again = user_service.ensure_demo_staff(db)
        staff = user_service.active_staff(db)
    assert [u.user_id for u in first] == [u.user_id for u in again] == [SARAH, MARCUS, PRIYA, DANA]
    assert {(u.name, u.role) for u in staff} >= {("Sarah Chen", "ops_manager"), ("Dana Whitfield", "admin")}
    assert sorted(u.role for u in staff) == ["admin", "ops_manager", "people_ops", "people_ops"]


# --- listing ---------------------------------------------------------------------------------------------------

def test_scopes_and_order(world) -> None:  # noqa: ANN001
    client, _, _ = world
    role = "q-esc q-over q-today q-step q-week q-late q-prog q-nodue".split()
    # Escalated first, then by due date; undated last. q-esc is Sarah's role's task escalated to People Ops.
    assert _ids(client.get("/api/v1/queue", headers=_who(MARCUS))) == role
    assert _ids(client.get("/api/v1/queue", params={"scope": "mine"}, headers=_who(MARCUS))) == ["q-week"]
    assert _ids(client.get("/api/v1/queue", params={"scope": "mine"}, headers=_who(PRIYA))) == ["q-step"]
    assert _ids(client.get("/api/v1/queue", params={"scope": "role"}, headers=_who(SARAH))) == ["q-esc", "q-mgr"]
    everything = client.get("/api/v1/queue", params={"scope": "all"}, headers=_who(SARAH))
    assert _ids(everything) == "q-esc q-over q-today q-mgr q-step q-week q-late q-prog q-nodue".split()
    first = everything.json()["items"][0]
    assert first["tutor_name"] == "Tutor 1" and first["overdue"] is True and first["escalated_to_role"] == "people_ops"
    assert everything.json()["items"][2]["overdue"] is False


def test_filters_and_paging(world) -> None:  # noqa: ANN001
    client, _, _ = world

    def ids(**params: Any) -> list[str]:
        return _ids(client.get("/api/v1/queue", params=params, headers=_who(MARCUS)))

    assert ids(risk="High") == ["q-over", "q-today", "q-nodue"]
    assert ids(risk=["High", "Critical"]) == ["q-esc", "q-over", "q-today", "q-step", "q-nodue"]
    assert ids(type="H4_retention_interview") == ["q-over", "q-today", "q-nodue"]
    assert ids(type=["H2_peer_mentoring", "H5_recognition"]) == ["q-week", "q-late", "q-prog"]
    assert ids(due="overdue") == ["q-esc", "q-over"]
    assert ids(due="today") == ["q-today"]
    assert ids(due="week") == ["q-today", "q-step", "q-week"]
    assert ids(status="needs_approval") == ["q-late"]
    assert "q-done" in ids(status="all") and "q-done" not in ids()
    assert ids(kind="program") == ["q-prog"]
    assert ids(risk="High", due="overdue") == ["q-over"]
    auto = client.get("/api/v1/queue", params={"scope": "all", "kind": "automated"}, headers=_who(SARAH))
    assert _ids(auto) == ["q-auto"]
    page = client.get("/api/v1/queue", params={"limit": 2, "offset": 2}, headers=_who(MARCUS)).json()
    assert (page["total"], page["limit"], page["offset"]) == (8, 2, 2)
    assert [i["intervention_id"] for i in page["items"]] == ["q-today", "q-step"]
    assert client.get("/api/v1/queue", params={"offset": 8}, headers=_who(MARCUS)).json()["items"] == []


@pytest.mark.parametrize("params, field", [
    ({"limit": 201}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"), ({"scope": "team"}, "scope"),
    ({"risk": "Extreme"}, "risk"), ({"due": "later"}, "due"), ({"status": "closed"}, "status"),
    ({"kind": "robot"}, "kind"),
])
def test_bad_queue_parameters_name_the_field(world, params: dict, field: str) -> None:  # noqa: ANN001
    client, _, _ = world
    response = client.get("/api/v1/queue", params=params, headers=_who(SARAH))
    assert response.status_code == 422
    assert [e["loc"][:2] for e in response.json()["detail"]] == [["query", field]]


def test_case_detail_and_unknown_ids(world) -> None:  # noqa: ANN001
    client, _, _ = world
    case = client.get("/api/v1/queue/q-week", headers=_who(PRIYA)).json()
    assert case["assigned_to"] == MARCUS and case["parent_id"] == "q-prog" and case["overdue"] is False
    assert [(e["revision"], e["event"], e["actor"]) for e in case["events"]] == [(1, "recorded", None),
                                                                                  (2, "claimed", MARCUS)]
    assert client.get("/api/v1/queue/nope", headers=_who(PRIYA)).status_code == 404
    for action, body in (("claim", None), ("complete", {"outcome": "improved"}), ("cancel", {"reason": "x"})):
        refused = client.post(f"/api/v1/queue/nope/{action}", json=body, headers=_who(SARAH))
        assert refused.status_code == 404 and refused.json()["detail"] == "No intervention nope."


def test_action_bodies_are_validated_by_field(world) -> None:  # noqa: ANN001
    client, engine, _ = world
    url = "/api/v1/queue/q-over/{}"

    def refused(action: str, body: dict) -> list:
        response = client.post(url.format(action), json=body, headers=_who(SARAH))
        assert response.status_code == 422, response.text
        return [e["loc"] for e in response.json()["detail"]]

    assert refused("complete", {"outcome": "great"}) == [["body", "outcome"]]
    assert refused("complete", {"notes": "no outcome"}) == [["body", "outcome"]]
    assert refused("complete", {"outcome": "improved", "notes": "x" * 4001}) == [["body", "notes"]]
    assert refused("cancel", {}) == [["body", "reason"]]
    assert refused("extend", {"extend_days": 0}) == [["body", "extend_days"]]
    assert refused("assign", {"assignee": "u_gone"}) == [["body", "assignee"]]
    assert refused("assign", {"assignee": "u_tutor"}) == [["body", "assignee"]]
    assert refused("claim", {"note": "typo"}) == [["body", "note"]]
    assert _row(engine, "q-over").status == "pending"


def test_actions_with_temporal_down_are_503_and_change_nothing(world) -> None:  # noqa: ANN001
    client, engine, _ = world
    for action, body in (("claim", None), ("assign", {"assignee": PRIYA}), ("cancel", {"reason": "dup"})):
        response = client.post(f"/api/v1/queue/q-over/{action}", json=body, headers=_who(SARAH))
        assert response.status_code == 503 and "Nothing changed" in response.json()["detail"], response.text
    row = _row(engine, "q-over")
    assert (row.status, row.assigned_to, row.revision) == ("pending", None, 0)


def test_tutor_history_has_every_step_newest_first_with_events(world) -> None:  # noqa: ANN001
    client, _, (t1, _, _) = world
    history = client.get(f"/api/v1/tutors/{t1}/interventions", headers=_who(MARCUS)).json()
    assert history["total"] == 5
    assert [i["intervention_id"] for i in history["items"]] == ["q-step", "q-mgr", "q-week", "q-esc", "q-prog"]
    by_id = {i["intervention_id"]: i for i in history["items"]}
    assert by_id["q-week"]["parent_id"] == "q-prog" and by_id["q-week"]["step"] == "kickoff"
    assert [e["event"] for e in by_id["q-week"]["events"]] == ["recorded", "claimed"]
    page = client.get(f"/api/v1/tutors/{t1}/interventions", params={"limit": 1, "offset": 2}, headers=_who(MARCUS))
    assert [i["intervention_id"] for i in page.json()["items"]] == ["q-week"]
    assert client.get("/api/v1/tutors/nobody/interventions", headers=_who(MARCUS)).status_code == 404
    assert client.get(f"/api/v1/tutors/{t1}/interventions").status_code == 401


def test_old_list_still_answers(world) -> None:  # noqa: ANN001
    client, _, _ = world
    assert client.get("/api/v1/interventions").status_code == 401
    body = client.get("/api/v1/interventions", params={"kind": "automated"}, headers=_who(SARAH)).json()
    assert [i["intervention_id"] for i in body["items"]] == ["q-auto"]
    assert client.get("/api/v1/interventions", headers=_who(SARAH)).json()["total"] == 10  # every open row, any kind


# --- the queue page --------------------------------------------------------------------------------------------

def _page_row(html: str, iid: str) -> str:
    at = html.index(f'data-intervention="{iid}"')
    return html[html.rindex("<tr", 0, at):html.index("</tr>", at)]


def test_queue_page_shows_the_signed_in_users_queue(world) -> None:  # noqa: ANN001
    client, engine, _ = world
    anonymous = client.get("/queue", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    sign_in(client, engine, MARCUS)
    assert "Intervention queue (9 open)" in client.get("/").text  # home counts every open task, any role
    html = client.get("/queue").text
    assert html.index('data-intervention="q-esc"') < html.index('data-intervention="q-over"')
    assert "q-mgr" not in html and 'aria-current="page">\n      My role' in html
    late = _page_row(html, "q-late")  # approving is a manager's: Marcus is told it waits for one
    assert "/approve" not in late and "Waiting for a manager's approval" in late
    assert 'action="/queue/q-over/claim"' in _page_row(html, "q-over")
    week = _page_row(html, "q-week")
    assert 'action="/queue/q-week/complete"' in week and 'action="/queue/q-week/unclaim"' in week
    assert "/extend" not in week and "/claim" not in week
    program = _page_row(html, "q-prog")  # a program is extended or cancelled; its tasks are worked
    assert 'action="/queue/q-prog/extend"' in program and '<label for="extend-' in program
    assert "/cancel" not in program and "/complete" not in program and "/claim" not in program
    assert "badge overdue" in _page_row(html, "q-over") and "badge escalated" in _page_row(html, "q-esc")
    assert 'data-intervention="q-today"' not in client.get("/queue?due=overdue").text
    wide = client.get("/queue?scope=all")
    assert wide.status_code == 403 and "scope=all" in wide.text


def test_queue_page_shows_refusals_on_the_row(world) -> None:  # noqa: ANN001
    client, engine, _ = world
    anonymous = client.post("/queue/q-over/claim", data={}, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    csrf = sign_in(client, engine, MARCUS)
    assert client.post("/queue/q-over/claim", data={"back": ""}).status_code == 403  # no CSRF token: refused
    assert _row(engine, "q-over").status == "pending"
    bad = client.post("/queue/q-week/complete", data={"outcome": "great", "notes": "keep me", "back": "",
                                                      "csrf_token": csrf})
    assert bad.status_code == 422
    row = _page_row(bad.text, "q-week")
    assert "Choose an outcome" in row and "keep me" in row and 'role="alert"' in row
    down = client.post("/queue/q-over/claim", data={"back": "risk=High", "csrf_token": csrf})
    assert down.status_code == 503 and "Temporal is unreachable" in _page_row(down.text, "q-over")
    assert 'data-intervention="q-esc"' not in down.text  # the filters of the page it came from are kept
    assert client.post("/queue/nope/claim", data={"csrf_token": csrf}).status_code == 404
    assert client.post("/queue/q-over/explode", data={"csrf_token": csrf}).status_code == 404
    assert _row(engine, "q-over").status == "pending"


# --- round trips through real workflows ----------------------------------------------------------------------

def _start_plan(settings: Settings, tutor: str, itype: str) -> Any:
    from domain.interventions.planning import build_plan, intervention_id

    rules = active_intervention_rules(settings.rules_dir)
    now = utcnow()
    return build_plan(intervention_id(tutor, itype, now), tutor, itype, rules.spec.interventions[itype],
                      facts={"churn_score": 70.0, "risk_level": "High"}, matched=["test"], as_of=now, rules=rules,
                      time_scale=settings.time_scale)


async def test_task_actions_round_trip_through_the_workflow(engine: Engine, settings: Settings, temporal_env,  # noqa: ANN001
                                                            temporal_client, activity_executor) -> None:  # noqa: ANN001
    from tests.integration.pipeline_helpers import eventually
    from worker import build_worker
    from workflows.human_task import HumanTaskWorkflow

    (tutor,) = seed_people(engine, tutors=1, students=0, tag=settings.temporal_task_queue)
    _seed_staff(engine)
    interview = _start_plan(settings, tutor, "H4_retention_interview")
    recognition = _start_plan(settings, tutor, "H5_recognition")
    app = create_app(settings)
    app.state.temporal = temporal_env.client  # the test's loop and client; no second connection
    api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp")
    async with build_worker(temporal_env.client, settings, activity_executor), api:
        handles = {}
        for plan in (interview, recognition):
            handles[plan.intervention_id] = await temporal_env.client.start_workflow(
                HumanTaskWorkflow.run, plan, id=plan.intervention_id, task_queue=settings.temporal_task_queue)
            await eventually(lambda p=plan: _row(engine, p.intervention_id), what="task recorded")
        url = f"/api/v1/queue/{interview.intervention_id}"

        early = await api.post(f"{url}/complete", json={"outcome": "improved"}, headers=_who(MARCUS))
        assert early.status_code == 409 and "claim or assign it before completing" in early.json()["detail"]
        claimed = await api.post(f"{url}/claim", headers=_who(MARCUS))
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["task"]["status"] == "in_progress"
        assert (claimed.json()["intervention"]["status"], claimed.json()["intervention"]["assigned_to"]) == (
            "in_progress", MARCUS)
        mine = await api.get("/api/v1/queue", params={"scope": "mine"}, headers=_who(MARCUS))
        assert _ids(mine) == [interview.intervention_id]
        other = await api.post(f"{url}/complete", json={"outcome": "improved"}, headers=_who(PRIYA))
        assert other.status_code == 409 and f"assigned to {MARCUS}" in other.json()["detail"]
        done = await api.post(f"{url}/complete", json={"outcome": "improved", "notes": "talked it through"},
                              headers=_who(MARCUS))
        assert done.status_code == 200, done.text
        result = await handles[interview.intervention_id].result()
        assert (result.status, result.outcome) == ("completed", "improved")
        row = _row(engine, interview.intervention_id)
        assert (row.status, row.outcome, row.notes, row.assigned_to) == ("completed", "improved",
                                                                         "talked it through", MARCUS)
        assert [e["event"] for e in done.json()["intervention"]["events"]] == ["recorded", "claimed", "completed"]
        closed = await api.post(f"{url}/claim", headers=_who(MARCUS))
        assert closed.status_code == 409 and "no running workflow" in closed.json()["detail"]

        # H5 needs an ops manager's approval: People Ops is refused by the workflow, Sarah is not.
        url = f"/api/v1/queue/{recognition.intervention_id}"
        refused = await api.post(f"{url}/approve", headers=_who(MARCUS))
        assert refused.status_code == 409 and "approval needs" in refused.json()["detail"]
        assert _row(engine, recognition.intervention_id).status == "needs_approval"
        approved = await api.post(f"{url}/approve", headers=_who(SARAH))
        assert approved.status_code == 200 and approved.json()["intervention"]["approved_by"] == SARAH
        # The page's form takes the same path.
        csrf = sign_in(api, engine, PRIYA)
        page = await api.post(f"/queue/{recognition.intervention_id}/claim", data={"back": "", "csrf_token": csrf},
                              follow_redirects=False)
        assert page.status_code == 303, page.text
        assert _row(engine, recognition.intervention_id).assigned_to == PRIYA
        await handles[recognition.intervention_id].execute_update(
            HumanTaskWorkflow.cancel, TaskCommand(actor=SARAH, actor_role="ops_manager", reason="test over"))

        # A program has no claim: refused in plain words. Cancelling it is an Update the program defines.
        from workflows.program import ProgramWorkflow
        program = _start_plan(settings, tutor, "H2_peer_mentoring")
        handle = await temporal_env.client.start_workflow(ProgramWorkflow.run, program, id=program.intervention_id,
                                                          task_queue=settings.temporal_task_queue)
        await eventually(lambda: _row(engine, program.intervention_id), what="program recorded")
        url = f"/api/v1/queue/{program.intervention_id}"
        claim = await api.post(f"{url}/claim", headers=_who(MARCUS))
        assert claim.status_code == 409
        assert claim.json()["detail"] == "'claim' does not apply to a program case; nothing changed."
        stop = await api.post(f"{url}/cancel", json={"reason": "tutor left"}, headers=_who(SARAH))
        assert stop.status_code == 200 and stop.json()["intervention"]["status"] == "cancelled", stop.text
        assert (await handle.result()).status == "cancelled"
