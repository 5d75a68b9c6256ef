"""What the synthetic tutors feel: an automated case acts from the moment its in-app message went out (even if
the case is later cancelled); a human case once its task or program kickoff was completed with an outcome."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from core.db import session_scope
from domain.interventions.models import OutboxMessage
from synth.live import delivered_before
from tests.factories import NOW, intervention_row, seed_people


def _message(iid: str, tutor: str, at, **extra) -> OutboxMessage:  # noqa: ANN001, ANN003
    return OutboxMessage(message_id=f"{iid}:message:in_app", intervention_id=iid, tutor_id=tutor, channel="in_app",
                         subject="s", body="b", status="sent", sent_at=at, created_at=at, **extra)


def test_delivery_times_follow_the_message_or_the_completed_conversation(engine: Engine) -> None:
    (t,) = seed_people(engine, tutors=1, students=0, tag="deliv")
    h = timedelta(hours=1)
    with session_scope(engine) as db:
        rows = [
            intervention_row("a1-sent-cancelled", t, "A1_coaching_tips", recommended=NOW, kind="automated", status="cancelled"),
            intervention_row("a2-not-sent", t, "A2_training_module", recommended=NOW, kind="automated", status="in_progress"),
            intervention_row("h4-done", t, "H4_retention_interview", recommended=NOW, status="completed", outcome="improved",
                             completed_date=NOW + 3 * h),
            intervention_row("h4-open", t, "H4_retention_interview", recommended=NOW, status="pending"),
            intervention_row("pip", t, "H3_pip", recommended=NOW, kind="program", step="program", status="in_progress"),
            intervention_row("pip-kickoff", t, "H3_pip", recommended=NOW, step="kickoff", parent_id="pip",
                             status="completed", outcome="no_change", completed_date=NOW + 2 * h),
            intervention_row("pip-checkin-1", t, "H3_pip", recommended=NOW, step="checkin", parent_id="pip",
                             status="completed", outcome="improved", completed_date=NOW + 5 * h),
        ]
        db.add_all(rows)
        db.flush()
        db.add(_message("a1-sent-cancelled", t, NOW + h))
        db.add(_message("h4-open", t, NOW + h, recipient_role="people_ops"))  # a staff notice reaches no tutor
    with session_scope(engine) as db:
        got = {(d.intervention_id, d.at) for d in delivered_before(db, NOW + 10 * h)}
        early = {d.intervention_id for d in delivered_before(db, NOW + 2 * h)}
    assert got == {("a1-sent-cancelled", NOW + h), ("h4-done", NOW + 3 * h), ("pip-kickoff", NOW + 2 * h)}
    assert early == {"a1-sent-cancelled"}
