"""Activities of the daily churn-model retraining: train and register a candidate, then champion/challenger.

Both re-read everything from the database and are idempotent: a retried training for the same data window and
day returns the version the earlier attempt registered; a retried decision returns the decision on record.
"""
from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.model_registry import service as registry
from domain.model_registry.models import ModelStatus, ModelVersion
from ml import lifecycle
from ml.labels import ChurnTruth
from workflows.inputs import (
    DecidePromotionInput,
    PromotionResult,
    TrainCandidateInput,
    TrainCandidateResult,
    as_date,
    iso_day,
)

# Wired by the composition root (worker.py): where churn labels come from when the database holds a synthetic
# world. None, or a source returning None, means the PRD's inactivity definition (real data).
TruthSource = Callable[[Session], ChurnTruth | None]


@contextmanager
def _heartbeating(every: float) -> Iterator[Callable[[str], None]]:
    """Heartbeats every ``every`` seconds, carrying the latest progress line, while the training runs.

    The fit's stages (one tuning pass can take minutes) report progress too rarely to heartbeat on their own; a
    beat from a side thread still stops the moment the worker process dies, which is what the timeout is for.
    """
    last = ["starting"]
    stop = threading.Event()
    ctx = contextvars.copy_context()  # the activity's context, so the side thread's beats reach this attempt

    def beat() -> None:
        while not stop.wait(every):
            ctx.run(activity.heartbeat, last[0])

    def progress(line: str) -> None:
        last[0] = line
        activity.logger.info("model training: %s", line)

    thread = threading.Thread(target=beat, name="model-heartbeat", daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        stop.set()
        thread.join()


def _trained(row: ModelVersion, *, reused: bool) -> TrainCandidateResult:
    return TrainCandidateResult(version=row.version, reused=reused, criterion=row.criterion,
                                data_start=iso_day(row.data_start), data_end=iso_day(row.data_end),
                                label_source=row.label_source)


def _decided(db: Session, row: ModelVersion) -> PromotionResult:
    decision = row.decision or {}
    live = registry.live_version(db, row.kind)
    return PromotionResult(version=row.version, promoted=row.status == ModelStatus.live.value and
                           decision.get("outcome") == "promoted", status=row.status,
                           reason=str(decision.get("reason", "")), live_version=live.version if live else None,
                           candidate_auc=decision.get("candidate_auc"), live_auc=decision.get("live_auc"))


@dataclass
class ModelActivities:
    engine: Engine
    settings: Settings
    truth_for: TruthSource | None = None

    def _truth(self, db: Session) -> ChurnTruth | None:
        return self.truth_for(db) if self.truth_for is not None else None

    @activity.defn
    def train_candidate(self, inp: TrainCandidateInput) -> TrainCandidateResult:
        beat_every = max(1.0, self.settings.model_train_heartbeat_seconds / 4)
        day, end = as_date(inp.day), as_date(inp.end)
        with _heartbeating(beat_every) as progress, session_scope(self.engine) as db:
            truth = self._truth(db)
            try:
                plan = lifecycle.plan_training(db, settings=self.settings, truth=truth, end=end, days=inp.days,
                                               day=day)
                existing = lifecycle.find_trained(db, plan)
                if existing is not None:
                    progress(f"{existing.version} was registered by an earlier attempt of this run")
                    return _trained(existing, reused=True)
                row, _run, _segs = lifecycle.train_candidate(db, settings=self.settings, truth=truth, end=end,
                                                             days=inp.days, progress=progress, day=day)
            except lifecycle.NotEnoughData as exc:
                # A young or empty database is a normal state, not a failure to retry: report and move on.
                activity.logger.info("model training skipped: %s", exc)
                return TrainCandidateResult(version=None, skipped=str(exc))
        return _trained(row, reused=False)

    @activity.defn
    def decide_promotion(self, inp: DecidePromotionInput) -> PromotionResult:
        with session_scope(self.engine) as db:
            row = registry.get_version(db, inp.version)
            if row is None:
                raise ApplicationError(f"unknown model version {inp.version!r}", non_retryable=True)
            if row.status != ModelStatus.candidate.value:
                return _decided(db, row)  # decided by an earlier attempt
            truth = self._truth(db) if row.label_source == "truth" else None
            if row.label_source == "truth" and truth is None:
                raise ApplicationError(f"{row.version} was trained on truth labels and this database has none: "
                                       "it cannot be compared on the same labels", non_retryable=True)
            try:
                segs = lifecycle.build_segments(db, settings=self.settings, start=row.data_start, end=row.data_end,
                                                truth=truth, progress=lambda line: activity.logger.info("decide: %s", line))
                promotion = lifecycle.decide_promotion(db, row, segs, settings=self.settings, now=utcnow())
            except ValueError as exc:  # the data no longer splits, or the candidate's features are not the pipeline's
                raise ApplicationError(f"cannot decide on {row.version}: {exc}", non_retryable=True) from exc
            activity.logger.info("model %s %s: %s", row.version, promotion.decision.get("outcome"),
                                 promotion.decision.get("reason"))
            return _decided(db, promotion.row)
