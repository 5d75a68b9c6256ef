"""Activities of the intervention workflows: persist a case's state, write outbox messages, run follow-up
checks. Each is idempotent (keyed by case id, revision, step), so Temporal's retries never duplicate a write."""
from __future__ import annotations

from dataclasses import dataclass
from sqlalchemy.engine import Engine
from temporalio import activity

from core.config import Settings
from core.db import session_scope
from domain.interventions import service
from domain.interventions.models import OutboxStatus
from domain.rulesets import service as ruleset_service
from workflows.inputs import FollowUpResult, InterventionStep, TaskSnapshot


@dataclass
class InterventionActivities:
    engine: Engine
    settings: Settings

    @activity.defn
    def record_intervention(self, step: InterventionStep) -> str:
        with session_scope(self.engine) as db:
            return service.record_intervention(db, step.plan, now=step.at).status

    @activity.defn
    def save_task(self, snapshot: TaskSnapshot) -> int:
        with session_scope(self.engine) as db:
            return service.save_snapshot(db, snapshot).revision

    @activity.defn
    def send_messages(self, step: InterventionStep) -> list[str]:
        """Writes the case's messages for this step; returns the email rows still waiting for delivery."""
        with session_scope(self.engine) as db:  # the case's row exists: every workflow records it first
            messages = service.write_messages(db, step)
            return [m.message_id for m in messages if m.channel == "email" and m.status != OutboxStatus.sent]

    @activity.defn
    def withdraw_messages(self, step: InterventionStep) -> int:
        """The case was cancelled while its email was still being retried: those rows will not be sent."""
        with session_scope(self.engine) as db:
            return service.withdraw_emails(db, step.plan.intervention_id, reason="case cancelled before delivery")

    @activity.defn
    def check_follow_up(self, step: InterventionStep) -> FollowUpResult:
        """A2: was a training module completed since the suggestion? A4 (escalate_if): do the follow-up's
        conditions, from the rules version that opened the case, still hold on the tutor's latest facts?"""
        plan = step.plan
        with session_scope(self.engine) as db:
            if plan.follow_up == "check_training":
                result = service.training_completed_since(db, plan.tutor_id, plan.recommended_at, step.at)
            else:
                rules = ruleset_service.rules_by_hash(db, plan.rules_hash, self.settings.rules_dir)
                facts = service.latest_facts(db, plan.tutor_id)
                holds = rules.follow_up_holds(plan.intervention_type, facts)
                result = FollowUpResult(done=holds, detail=("pattern continued: escalated to manager review" if holds
                                                            else "pattern stopped: no escalation"))
            service.set_follow_up(db, plan.intervention_id, result, now=step.at)
            return result
