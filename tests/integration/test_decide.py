"""The decide activity is retried by Temporal when a worker dies after its commit but before the result is
recorded: the retry must plan the same cases again (so their workflows still start), while a later decision
must not plan them a second time."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from activities.evaluation import EvaluationActivities
from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.interventions.models import Intervention
from tests.factories import seed_people
from workflows.inputs import DecideInput

CRITICAL = {"churn_score": 82.0, "risk_level": "Critical", "tier": "At Risk", "metrics_below_threshold": 3,
            "weakest_subject_rating_30d": 3.0, "flag_high_reschedule": True, "first_sessions_recent": 2,
            "first_session_ids": ["s_first_1", "s_first_2"]}


def test_a_retried_decision_plans_the_same_cases_and_a_later_one_none(engine: Engine, settings: Settings) -> None:
    (tutor,) = seed_people(engine, tutors=1, students=0, tag="decide")
    act = EvaluationActivities(engine=engine, settings=settings)
    now = utcnow()
    first = act.decide_interventions(DecideInput(tutor_id=tutor, as_of=now, facts=CRITICAL))
    retry = act.decide_interventions(DecideInput(tutor_id=tutor, as_of=now, facts=CRITICAL))
    ids = sorted(p.intervention_id for p in first.plans)
    assert {p.intervention_type for p in first.plans} == {
        "A1_coaching_tips", "A2_training_module", "A3_first_session_checkin", "A4_reschedule_alert", "H3_pip"}
    assert sum(p.intervention_type == "A3_first_session_checkin" for p in first.plans) == 2  # one per first session
    assert sorted(p.intervention_id for p in retry.plans) == ids
    later = act.decide_interventions(DecideInput(tutor_id=tutor, as_of=now + timedelta(minutes=5), facts=CRITICAL))
    assert later.plans == [] and later.capped == []  # every type is open; the A3 sessions already have a case
    with session_scope(engine) as db:
        assert db.execute(select(func.count()).select_from(Intervention)).scalar_one() == len(ids)
