"""Training the first-session model and deciding whether it replaces the live one (champion/challenger on the
candidate's validation sessions, as for the churn model). One path for the CLI and any later schedule."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlmodel import Session

from core.config import Settings
from domain.model_registry import service as registry
from domain.model_registry.models import ModelKind, ModelStatus, ModelVersion
from domain.sessions.models import TutoringSession
from ml import metrics
from ml.first_session import FEATURES, FirstSessionTable, first_sessions
from ml.first_session_model import NotEnoughData, Training, train
from rules.first_session import active_first_session_rules
from rules.scoring import active_scoring_rules

KIND = ModelKind.first_session.value
LABEL_SOURCE = "rating"  # labels are the product's own ratings: no ground truth involved
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    row: ModelVersion
    training: Training
    table: FirstSessionTable


@dataclass(frozen=True)
class Decision:
    row: ModelVersion
    promoted: bool
    decision: dict


def data_window(db: Session, *, end: date | None, days: int, now: datetime) -> tuple[date, date]:
    """``days`` session days ending at ``end`` (default: the last day with sessions, at most yesterday UTC, so
    the day's ratings are in), never before the first session."""
    if days < 3:
        raise NotEnoughData(f"days must be at least 3 for a train/validation/test split, not {days}")
    first, last = db.execute(select(func.min(TutoringSession.scheduled_start),
                                    func.max(TutoringSession.scheduled_start))).one()
    if first is None:
        raise NotEnoughData("the database has no sessions: nothing to train on")
    latest = min(last.astimezone(UTC).date(), now.astimezone(UTC).date() - timedelta(days=1))
    end = end or latest
    if end > latest:
        raise NotEnoughData(f"end {end} is after the last complete day of sessions ({latest})")
    return max(end - timedelta(days=days - 1), first.astimezone(UTC).date()), end


def train_candidate(db: Session, *, settings: Settings, now: datetime, end: date | None = None, days: int = 90,
                    progress: Progress = lambda _line: None) -> Candidate:
    """Builds the first sessions of the window, trains, and registers the model as a candidate."""
    rules = active_first_session_rules(settings.rules_dir)
    spec = rules.spec
    start, end = data_window(db, end=end, days=days, now=now)
    progress(f"first sessions scheduled {start}..{end}; poor = rated below {spec.poor_rating_below}")
    started = time.perf_counter()
    table = first_sessions(db, start=start, end=end, scoring=active_scoring_rules(settings.rules_dir).spec)
    progress(f"features of {len(table)} rated first sessions built in {time.perf_counter() - started:.1f}s")
    t = spec.training
    training = train(table, poor_below=spec.poor_rating_below, threshold=spec.alert_threshold, c_grid=t.c_grid,
                     min_sessions=t.min_first_sessions, min_poor=t.min_poor_per_segment, progress=progress)
    params = {"C": training.model.c, "search": training.search, "counts": training.counts,
              "seconds": round(training.seconds, 2), "rules_version": rules.version_label, "rules_hash": rules.hash,
              "poor_rating_below": spec.poor_rating_below, "coefficients": training.model.coefficients()}
    row = registry.register(db, kind=KIND, model=training.model, features=list(FEATURES), params=params,
                            metrics={"val": training.metrics["val"], "test": training.metrics["test"],
                                     "train": training.metrics["train"]},
                            criterion=training.criterion, data_start=start, data_end=end, label_source=LABEL_SOURCE,
                            training_rows=training.counts["train"]["sessions"], models_dir=settings.models_dir, now=now)
    progress(f"registered {row.version} (candidate), validation AUC {training.criterion:.4f}")
    return Candidate(row=row, training=training, table=table)


def _val_auc(model: object, table: FirstSessionTable, segments: np.ndarray, poor_below: float) -> float:
    val = segments == 1
    return metrics.auc(table.poor(poor_below)[val], model.predict(table.X[val]))  # type: ignore[attr-defined]


def decide_promotion(db: Session, candidate: Candidate, *, settings: Settings, now: datetime) -> Decision:
    """Live when there is no live model, when the live one cannot read today's features, or when the candidate's
    validation AUC beats the live model's on the same sessions by more than the rules' minimum gain."""
    spec = active_first_session_rules(settings.rules_dir).spec
    row = candidate.row
    if row.status == ModelStatus.live.value:
        return Decision(row=row, promoted=False, decision={**(row.decision or {}), "outcome": "already live"})
    seg, below = candidate.training.segments, spec.poor_rating_below
    cand_auc = _val_auc(registry.load_model(row, settings.models_dir), candidate.table, seg, below)
    decision: dict = {"criterion": "validation AUC", "candidate": row.version, "candidate_auc": cand_auc,
                      "min_gain": spec.training.promotion_min_gain, "validation_sessions": int((seg == 1).sum()),
                      "decided_at": now.isoformat()}
    live = registry.live_version(db, KIND)
    if live is None:
        ok, why = True, "no live model"
    else:
        decision["live_version"] = live.version
        live_model = registry.load_model(live, settings.models_dir)
        if tuple(getattr(live_model, "features", ())) != FEATURES:
            ok, why = True, f"live {live.version} reads other features than today's pipeline: it cannot score bookings"
        else:
            live_auc = _val_auc(live_model, candidate.table, seg, below)
            gain = cand_auc - live_auc
            decision.update(live_auc=live_auc, gain=gain)
            ok = math.isfinite(gain) and gain > spec.training.promotion_min_gain
            why = (f"candidate AUC {cand_auc:.4f} {'beats' if ok else 'does not beat'} live {live_auc:.4f} "
                   f"by more than {spec.training.promotion_min_gain} ({gain:+.4f})")
    decision.update(reason=why, outcome="promoted" if ok else "rejected")
    if ok:
        row = registry.promote(db, row.version, decision=decision, now=now)
    else:
        row = registry.reject(db, row.version, decision=decision, now=now)
    return Decision(row=row, promoted=ok, decision=row.decision or decision)
