"""Activities of the tutor lifecycle: evaluate a tutor, decide its interventions, sweep for lost signals."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.db import session_scope
from core.temporal import notify_sessions_ingested
from core.types import utcnow
from domain.evaluation.service import UnknownTutor, evaluate_tutor
from domain.interventions.planning import decide
from domain.interventions.service import record_plans
from domain.rulesets import service as ruleset_service
from domain.rulesets.shadow import record_shadow
from domain.sessions.service import pending_tutors
from rules.scoring import active_scoring_rules
from workflows.inputs import (
    Decision,
    DecideInput,
    EvaluateTutorInput,
    EvaluationResult,
    SweepInput,
    SweepResult,
)


@dataclass
class EvaluationActivities:
    engine: Engine
    settings: Settings

    @activity.defn
    def evaluate_tutor(self, inp: EvaluateTutorInput) -> EvaluationResult:
        rules = active_scoring_rules(self.settings.rules_dir)
        try:
            with session_scope(self.engine) as db:
                ev = evaluate_tutor(db, inp.tutor_id, as_of=inp.as_of, rules=rules, now=utcnow())
        except UnknownTutor:
            raise ApplicationError(f"unknown tutor {inp.tutor_id}", non_retryable=True) from None
        return EvaluationResult(
            tutor_id=ev.tutor_id, as_of=ev.as_of, churn_score=ev.score.churn_score, risk_level=ev.score.risk_level,
            tier=ev.tier, flags=[f.name for f in ev.score.flags], sessions_marked=ev.sessions_marked, facts=ev.facts,
        )

    @activity.defn
    def decide_interventions(self, inp: DecideInput) -> Decision:
        """Plans under the active rules and writes the planned rows in the same transaction (so the next
        evaluation's caps see them); a shadow candidate is evaluated beside it and only recorded."""
        with session_scope(self.engine) as db:
            # Read per decision, so a publish takes effect on the next evaluation without a restart.
            rules = ruleset_service.active_rules(db, self.settings.rules_dir)
            shadow = ruleset_service.shadow_rules(db)
            decision, candidate = decide(db, inp.tutor_id, inp.facts, rules=rules, shadow=shadow, as_of=inp.as_of,
                                         time_scale=self.settings.time_scale)
            if candidate is not None:
                record_shadow(db, inp.tutor_id, inp.as_of, decision, candidate)
            record_plans(db, decision.plans, now=inp.as_of)
            return decision


@dataclass
class SweepActivities:
    engine: Engine
    settings: Settings
    client: Client

    @activity.defn
    async def resignal_pending(self, inp: SweepInput) -> SweepResult:
        """Signals every tutor that still has unevaluated sessions older than the grace period."""
        older_than = utcnow() - timedelta(seconds=inp.grace_seconds)

        def find() -> list[str]:
            with session_scope(self.engine) as db:
                return pending_tutors(db, older_than=older_than)

        tutors = await asyncio.to_thread(find)
        await notify_sessions_ingested(self.client, {t: [] for t in tutors}, task_queue=self.settings.temporal_task_queue)
        return SweepResult(tutors_signalled=len(tutors))
