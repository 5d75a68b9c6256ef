"""A change token for the live ops pages: a short string that differs whenever something Home shows may have changed.

The live stream (web.live) compares tokens once a second, so the token must stay cheap on a 90-day world (~270k
sessions). Each part is one indexed lookup or a small scan, all in one round trip:
- a session ingested: the newest created_at among sessions not yet evaluated, read from ix_sessions_pending's
  NULL prefix (SQLite reads its last entry; PostgreSQL reads the prefix, which the evaluation sweep keeps short),
- a session evaluated: the newest evaluated_at (ix_sessions_pending's leading column). Evaluation takes a session
  out of the pending set, so the pending maximum alone could fall back to an earlier value (ingested and evaluated
  between two checks); evaluated_at only moves forward with the clock, so the pair never repeats;
- feedback ingested: the newest student_feedback.created_at. Cheap only with an index on that column (1 ms
  instead of ~40-50 ms on 430k rows, measured on both databases); until the model declares one, this is a scan,
- a task created or changed: the newest intervention_events id (its primary key). Every write of an intervention
  row (recorded, each transition, follow-up) adds an event row in the same transaction,
- a churn score or risk level re-computed: the newest prediction update among the last days' predictions (the
  prediction_date index keeps it to a few hundred rows); Home only reads each tutor's latest prediction,
- a tutor's status changed: the newest tutors.updated_at (a few hundred rows).
Audit rows are deliberately left out: reading a page writes one, and the page's own refresh must not count as a change.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from domain.feedback.models import StudentFeedback
from domain.interventions.models import InterventionEvent
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.tutors.models import Tutor

# Predictions are rewritten for the current UTC day; two days back covers a caller whose day has just turned.
RECENT_PREDICTIONS = timedelta(days=2)
TOKEN_LENGTH = 16


def change_token(db: Session, *, now: datetime) -> str:
    """Hex digest of the figures above; equal tokens mean nothing Home shows has been written in between."""
    parts = select(
        select(func.max(TutoringSession.created_at)).where(TutoringSession.evaluated_at.is_(None)).scalar_subquery(),
        select(func.max(TutoringSession.evaluated_at)).scalar_subquery(),
        select(func.max(StudentFeedback.created_at)).scalar_subquery(),
        select(func.max(InterventionEvent.event_id)).scalar_subquery(),
        select(func.max(ChurnPrediction.updated_at))
        .where(ChurnPrediction.prediction_date >= (now - RECENT_PREDICTIONS).date()).scalar_subquery(),
        select(func.max(Tutor.updated_at)).scalar_subquery(),
    )
    row = db.execute(parts).one()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:TOKEN_LENGTH]
