"""A tutor's notifications: only their own, opened and answered through the API; the answer is stamped on
the message and on its intervention (what effectiveness reads as acceptance)."""
from __future__ import annotations

import httpx
from sqlalchemy.engine import Engine

from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions import service
from domain.interventions.models import Intervention, OutboxMessage
from domain.interventions.planning import build_plan, intervention_id
from domain.users.models import User
from domain.users.service import ensure_demo_staff
from rules.interventions import active_intervention_rules
from tests.auth import bearer
from tests.factories import seed_people
from workflows.inputs import InterventionStep


async def test_tutor_opens_and_answers_only_their_own_notifications(engine: Engine, settings: Settings) -> None:
    mine, other = seed_people(engine, tutors=2, students=0, tag="notes")
    rules = active_intervention_rules(settings.rules_dir)
    now = utcnow()
    plan = build_plan(intervention_id(mine, "A1_coaching_tips", now), mine, "A1_coaching_tips",
                      rules.spec.interventions["A1_coaching_tips"], facts={"churn_score": 44.0, "risk_level": "Medium"},
                      matched=["coaching_tips"], as_of=now, rules=rules, time_scale=1.0)
    with session_scope(engine) as db:
        service.record_intervention(db, plan, now=now)
        service.write_messages(db, InterventionStep(plan=plan, step="message", at=now))
        db.add(User(user_id="u_mine", email="mine@example.test", name="Mine", role="tutor", tutor_id=mine))
        db.add(User(user_id="u_other", email="other@example.test", name="Other", role="tutor", tutor_id=other))
        ensure_demo_staff(db)
    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    message_id = f"{plan.intervention_id}:message:in_app"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp") as api:
        listed = await api.get("/api/v1/me/notifications", headers=bearer(engine, "u_mine"))
        assert [n["message_id"] for n in listed.json()] == [message_id]
        assert "churn" not in listed.text.lower() and "risk" not in listed.text.lower()  # tutors never see scores
        assert (await api.get("/api/v1/me/notifications", headers=bearer(engine, "u_other"))).json() == []
        assert (await api.post(f"/api/v1/me/notifications/{message_id}/open", headers=bearer(engine, "u_other"))).status_code == 404
        assert (await api.get("/api/v1/me/notifications", headers=bearer(engine, "u_sarah_chen"))).status_code == 403
        assert (await api.get("/api/v1/me/notifications")).status_code == 401
        r = await api.post(f"/api/v1/me/notifications/{message_id}/respond", headers=bearer(engine, "u_mine"), json={"response": ""})
        assert r.status_code == 422 and "response" in r.text
        r = await api.post(f"/api/v1/me/notifications/{message_id}/open", headers=bearer(engine, "u_mine"))
        assert r.status_code == 200 and r.json()["opened_at"] and r.json()["responded_at"] is None
        r = await api.post(f"/api/v1/me/notifications/{message_id}/respond", headers=bearer(engine, "u_mine"),
                           json={"response": "Thanks, useful"})
        assert r.status_code == 200 and r.json()["responded_at"]
    with session_scope(engine) as db:
        message, row = db.get(OutboxMessage, message_id), db.get(Intervention, plan.intervention_id)
        assert message.response == "Thanks, useful" and row.opened_at and row.responded_at


def test_a_tutor_message_without_a_body_never_falls_back_to_the_trigger_reason(engine: Engine, settings: Settings) -> None:
    """The trigger reason names the churn score and risk level (staff-only); a plan whose rules give no message
    body must still not carry it to the tutor."""
    import dataclasses

    (mine,) = seed_people(engine, tutors=1, students=0, tag="nobody")
    rules = active_intervention_rules(settings.rules_dir)
    now = utcnow()
    plan = build_plan(intervention_id(mine, "A1_coaching_tips", now), mine, "A1_coaching_tips",
                      rules.spec.interventions["A1_coaching_tips"], facts={"churn_score": 61.5, "risk_level": "High"},
                      matched=["coaching_tips"], as_of=now, rules=rules, time_scale=1.0)
    plan = dataclasses.replace(plan, message_body=None)
    assert "61.5" in plan.trigger_reason  # the reason is what must not leak
    with session_scope(engine) as db:
        service.record_intervention(db, plan, now=now)
        messages = service.write_messages(db, InterventionStep(plan=plan, step="message", at=now))
        assert messages and all(m.recipient_role is None for m in messages)
        for m in messages:
            assert "61.5" not in m.body and "high" not in m.body.lower() and "churn" not in m.body.lower()
