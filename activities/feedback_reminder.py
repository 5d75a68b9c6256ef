"""The feedback reminder's one database step: remind the student unless feedback arrived (domain.feedback.reminders).

Idempotent on the session: the outbox row is keyed by it, so a retried attempt returns the row it wrote before.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity

from core.config import Settings
from core.db import session_scope
from domain.feedback import reminders
from workflows.feedback_reminder import FeedbackReminderResult, ReminderStep


@dataclass
class FeedbackReminderActivities:
    engine: Engine
    settings: Settings

    @activity.defn
    def queue_feedback_reminder(self, step: ReminderStep) -> FeedbackReminderResult:
        with session_scope(self.engine) as db:
            done = reminders.queue_reminder(db, step.session_id,
                                            link_expires_at=datetime.fromisoformat(step.link_expires_at),
                                            site_url=self.settings.site_url, now=datetime.fromisoformat(step.at))
        return FeedbackReminderResult(session_id=step.session_id, outcome=done.outcome.value,
                                      message_id=done.message_id)
