"""Activities of an intervention workflow: record it, message the tutor, escalate, complete. All idempotent."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from temporalio import activity

from core.db import session_scope
from domain.interventions import service
from workflows.inputs import InterventionStep


@dataclass
class InterventionActivities:
    engine: Engine

    @activity.defn
    def record_intervention(self, step: InterventionStep) -> str:
        with session_scope(self.engine) as db:
            return service.record_intervention(db, step.plan, now=step.at).status

    @activity.defn
    def send_tutor_message(self, step: InterventionStep) -> str:
        with session_scope(self.engine) as db:
            return service.send_message(db, step.plan, step=step.step, now=step.at).message_id

    @activity.defn
    def escalate_intervention(self, step: InterventionStep) -> None:
        with session_scope(self.engine) as db:
            service.escalate(db, step.plan.intervention_id, to_role=step.plan.escalate_to_role, now=step.at)

    @activity.defn
    def complete_intervention(self, step: InterventionStep) -> None:
        assert step.completion is not None
        with session_scope(self.engine) as db:
            service.complete(db, step.plan.intervention_id, step.completion, now=step.at)
