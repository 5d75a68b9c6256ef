"""One tutor's evaluation after their sessions arrive: assess, store, mark the covered sessions evaluated."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from core.types import utcnow
from domain.evaluation.assess import assess
from domain.evaluation.store import prefetch, save
from domain.metrics.service import WindowMetrics, load_history
from domain.scoring import service as scoring
from domain.sessions.models import TutoringSession
from domain.sessions.service import IN_CHUNK
from domain.tiers import service as tiers
from domain.tutors.models import Tutor
from rules.scoring import ScoringRules


class UnknownTutor(LookupError):
    pass


@dataclass(frozen=True)
class Evaluation:
    tutor_id: str
    as_of: datetime
    score: scoring.Score
    tier: str
    windows: dict[int, WindowMetrics]
    facts: dict[str, Any]
    sessions_marked: int


def evaluate_tutor(db: Session, tutor_id: str, *, as_of: datetime, rules: ScoringRules, now: datetime | None = None) -> Evaluation:
    """Recomputes and stores everything for ``tutor_id`` as of ``as_of``; marks the pending sessions it covered."""
    now, spec = now or utcnow(), rules.spec
    as_of = as_of.astimezone(UTC)  # rows are keyed by the UTC day, whatever zone the caller wrote as_of in
    tutor = db.get(Tutor, tutor_id)
    if tutor is None:
        raise UnknownTutor(tutor_id)
    # Read the pending ids first: a session committed after this read stays pending and is evaluated next time.
    pending = list(db.execute(select(TutoringSession.session_id).where(
        TutoringSession.tutor_id == tutor_id, TutoringSession.evaluated_at.is_(None))).scalars())
    # A real-time evaluation sees everything up to and including as_of (a session starting "now" counts).
    until = as_of + timedelta(microseconds=1)
    history = load_history(db, tutor_id, since=as_of - timedelta(days=spec.history_days), until=until)
    cut = tiers.latest_cutoffs(db)
    a = assess(tutor_id, history, onboarding=tutor.onboarding_date, as_of=until, rules=spec,
               bounds=cut.lower_bounds if cut else None)
    facts = save(db, a, prefetch(db, as_of.date(), [tutor_id]), rules=rules, now=now)
    previous = tiers.current_tiers(db, [tutor_id]).get(tutor_id)
    tiers.record(db, tutor_id, a.tier, previous=previous, as_of=as_of, source="evaluation", rules=rules)
    marked = 0
    for i in range(0, len(pending), IN_CHUNK):
        chunk = pending[i:i + IN_CHUNK]
        marked += db.execute(update(TutoringSession).where(TutoringSession.session_id.in_(chunk))
                             .values(evaluated_at=now)).rowcount or 0
    return Evaluation(tutor_id=tutor_id, as_of=as_of, score=a.score, tier=a.tier.tier, windows=a.windows,
                      facts=facts, sessions_marked=marked)
