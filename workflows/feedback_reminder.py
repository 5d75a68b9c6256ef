"""One workflow per session whose feedback link was issued (id feedback-reminder-<session_id>): wait until the
reminder is due, then have the activity remind the student unless feedback arrived meanwhile, and deliver that
email through the same delivery activity as every other outbox email.

Replay-safe by construction: the due time is an absolute instant in the input, compared with workflow.now(); the
only commands are one timer and at most two activities, in a fixed order. Standard library + temporalio only.
Times in the payloads are ISO 8601 strings: these dataclasses live in the workflow module, which the sandbox
re-imports with a proxied datetime class that the data converter does not recognise (as in workflows.retention).

``start_feedback_reminder`` is the client side (the link route calls it); it never runs inside the workflow.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.automated import EMAIL_RETRY, EMAIL_SCHEDULE_TO_CLOSE
    from workflows.policies import DB_RETRY, DB_TIMEOUT

log = logging.getLogger(__name__)
# activities/feedback_reminder.py, called by name: that module imports the payloads below (no import cycle).
QUEUE_FEEDBACK_REMINDER = "queue_feedback_reminder"
DELIVER_EMAIL = "deliver_email"  # activities/notifications.py: the one SMTP delivery path
SCHEDULED, ALREADY_SCHEDULED, NOT_SCHEDULED = "scheduled", "already_scheduled", "not_scheduled"


def reminder_workflow_id(session_id: str) -> str:
    return f"feedback-reminder-{session_id}"


@dataclass
class FeedbackReminderInput:
    session_id: str
    link_expires_at: str  # ISO 8601: the activity signs the same link again from it
    remind_at: str  # ISO 8601: when the reminder is due


@dataclass
class ReminderStep:
    session_id: str
    link_expires_at: str
    at: str  # the workflow's now, ISO 8601: the activity decides as of this instant


@dataclass
class FeedbackReminderResult:
    session_id: str
    outcome: str  # a domain.feedback.reminders.Outcome value
    message_id: str | None = None
    delivery: str | None = None  # "sent" or "failed" when an email went to delivery


@workflow.defn
class FeedbackReminderWorkflow:
    @workflow.run
    async def run(self, inp: FeedbackReminderInput) -> FeedbackReminderResult:
        wait = datetime.fromisoformat(inp.remind_at) - workflow.now()
        if wait > timedelta(0):
            await workflow.sleep(wait)
        result: FeedbackReminderResult = await workflow.execute_activity(
            QUEUE_FEEDBACK_REMINDER, ReminderStep(inp.session_id, inp.link_expires_at, workflow.now().isoformat()),
            result_type=FeedbackReminderResult, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY)
        if result.message_id is None:
            return result
        try:
            await workflow.execute_activity(
                DELIVER_EMAIL, result.message_id, start_to_close_timeout=timedelta(seconds=60),
                schedule_to_close_timeout=EMAIL_SCHEDULE_TO_CLOSE, retry_policy=EMAIL_RETRY)
        except ActivityError as err:
            # Rejected for good or out of retries: the outbox row says failed and why; nothing else to undo.
            workflow.logger.warning("feedback reminder %s not delivered: %s", result.message_id, err.cause or err)
            return replace(result, delivery="failed")
        return replace(result, delivery="sent")


async def start_feedback_reminder(client: Client | None, *, session_id: str, link_expires_at: datetime,
                                  remind_at: datetime, task_queue: str) -> str:
    """Starts the session's reminder; says whether it is scheduled now, was already, or could not be.

    One reminder per session however many links are issued: the id is the session's, and a run that finished
    (reminded, or found feedback) is not started again. A failed run may be, so asking for the link again after
    Temporal was unreachable ("not_scheduled") is the way to schedule it.
    """
    if client is None:
        return NOT_SCHEDULED
    try:
        await client.start_workflow(
            FeedbackReminderWorkflow.run,
            FeedbackReminderInput(session_id=session_id, link_expires_at=link_expires_at.isoformat(),
                                  remind_at=remind_at.isoformat()),
            id=reminder_workflow_id(session_id), task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
    except WorkflowAlreadyStartedError:
        return ALREADY_SCHEDULED
    except Exception:  # noqa: BLE001 - the link is issued either way; the caller is told and can ask again
        log.warning("could not schedule the feedback reminder of session %s", session_id, exc_info=True)
        return NOT_SCHEDULED
    return SCHEDULED
