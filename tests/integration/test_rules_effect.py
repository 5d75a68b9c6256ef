"""Rules are data, end to end: an admin's invalid publish is refused naming the rule and field and changes
nothing; a valid threshold edit, published through the API, changes which interventions the decide activity
(the one every tutor workflow runs) creates, with no code change and no restart. A shadow candidate beside
it only records what it would have done."""
from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from activities.evaluation import EvaluationActivities
from api.main import create_app
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import Intervention
from domain.rulesets.models import ShadowDecision
from tests.auth import account, bearer
from tests.factories import seed_people
from workflows.inputs import DecideInput

FACTS = {"churn_score": 42.0, "risk_level": "Medium", "tier": "Strong", "metrics_below_threshold": 2}
OLD_RULE = "      - {field: metrics_below_threshold, op: gt, value: 0}"
NEW_RULE = "      - {field: metrics_below_threshold, op: gt, value: 2}"
OLD_TEST = "      - given: {risk_level: Medium, metrics_below_threshold: 2}\n        expect: [A1_coaching_tips]"
NEW_TEST = "      - given: {risk_level: Medium, metrics_below_threshold: 3}\n        expect: [A1_coaching_tips]"


def _types(engine: Engine, settings: Settings, tutor: str, at) -> set[str]:  # noqa: ANN001
    decision = EvaluationActivities(engine=engine, settings=settings).decide_interventions(
        DecideInput(tutor_id=tutor, as_of=at, facts=FACTS))
    return {p.intervention_type for p in decision.plans}


async def test_a_published_threshold_edit_changes_what_is_created(engine: Engine, settings: Settings) -> None:
    before, refused, after, shadowed = seed_people(engine, tutors=4, students=0, tag="rules")
    now = utcnow()
    assert _types(engine, settings, before, now) == {"A1_coaching_tips"}  # seeds the store with the shipped v2

    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp",
                                 headers=bearer(engine, account(engine, "admin", user_id="u_dana"))) as api:
        active = (await api.get("/api/v1/rules/tutor_interventions/versions/2")).json()["content"]
        assert OLD_RULE in active and OLD_TEST in active

        # Only the threshold: the rule's own golden test now fails, and the publish is refused, naming both.
        r = await api.post("/api/v1/rules/tutor_interventions/draft/publish",
                           json={"content": active.replace(OLD_RULE, NEW_RULE)})
        assert r.status_code == 422, r.text
        (problem,) = r.json()["problems"]
        assert problem["rule"] == "coaching_tips" and problem["field"].startswith("rules.1.tests.0")
        assert "golden test failed" in problem["message"]
        assert [v["version"] for v in (await api.get("/api/v1/rules/tutor_interventions/versions")).json()] == [2]
        assert _types(engine, settings, refused, now) == {"A1_coaching_tips"}  # nothing changed

        # Threshold and golden test together: published as v3, active at once.
        edited = active.replace(OLD_RULE, NEW_RULE).replace(OLD_TEST, NEW_TEST)
        r = await api.post("/api/v1/rules/tutor_interventions/draft/publish", json={"content": edited})
        assert r.status_code == 200, r.text
        v3 = r.json()
        assert v3["version"] == 3 and v3["author"] == "u_dana" and "+      - {field: metrics_below_threshold, op: gt, value: 2}" in v3["diff"]

    assert _types(engine, settings, after, now) == set()  # two metrics below threshold no longer reach A1
    with session_scope(engine) as db:
        rows = db.execute(select(Intervention.tutor_id, Intervention.rules_version)).all()
    # The cases created under v2 keep their version; nothing was created under v3.
    assert sorted(rows) == [(before, "tutor_interventions@v2"), (refused, "tutor_interventions@v2")]

    # Roll back to v2 as a shadow of v3: it records that it would have sent A1, and creates nothing.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tp",
                                 headers=bearer(engine, account(engine, "admin", user_id="u_dana"))) as api:
        r = await api.post("/api/v1/rules/tutor_interventions/versions/2/shadow", )
        assert r.status_code == 200, r.text
    assert _types(engine, settings, shadowed, now + timedelta(minutes=1)) == set()
    with session_scope(engine) as db:
        shadow = db.execute(select(ShadowDecision).where(ShadowDecision.tutor_id == shadowed)).scalar_one()
        created = db.execute(select(func.count()).select_from(Intervention).where(Intervention.tutor_id == shadowed)).scalar_one()
    assert shadow.would_create == ["A1_coaching_tips"] and shadow.active_create == [] and created == 0
