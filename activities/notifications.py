"""Activities that deliver outbox messages. Email goes over SMTP; in-app rows need no delivery."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings
from domain.notifications.delivery import PermanentDeliveryError, deliver_email


@dataclass
class NotificationActivities:
    engine: Engine
    settings: Settings

    @activity.defn
    def deliver_email(self, message_id: str) -> str:
        """Sends one outbox email (idempotent on the row) and returns its final status, "sent".

        A rejected message fails the activity for good (non-retryable); anything that can pass (server down,
        4xx, timeout, database error) propagates as is, so the workflow's retry policy decides when to retry.
        """
        try:
            return deliver_email(self.engine, message_id, self.settings).status
        except PermanentDeliveryError as exc:
            raise ApplicationError(str(exc), type="PermanentDeliveryError", non_retryable=True) from exc
