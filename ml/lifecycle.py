"""The churn model's lifecycle: train a candidate on the recent data and register it, then decide whether it
replaces the live model (champion/challenger on the same validation segment).

One path for the CLI (`tutorpulse model train|promote`) and the daily retraining workflow's activities. Ground
truth never comes from here: callers pass a ``ChurnTruth`` (the composition roots read it) or None, in which
case the labels are the PRD's inactivity definition, as on real data.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import Session

from core.config import Settings
from core.types import utcnow
from domain.model_registry import service as registry
from domain.model_registry.models import ModelStatus, ModelVersion
from ml.card import write_card
from ml.dataset import Segments, segments
from ml.features import build_features
from ml.labels import HORIZONS, ChurnTruth, churn_times, observed_from, observed_until
from ml.pipeline import Run, evaluate, fit, mean_auc
from ml.train import GRID
from rules.scoring import active_scoring_rules

CHURN = "churn"
Progress = Callable[[str], None]
# The modules whose code decides what a trained model is: a change to any of them is a different model.
_MODEL_CODE = ("features.py", "feature_data.py", "windows.py", "labels.py", "dataset.py", "hazard.py", "train.py",
               "pipeline.py", "baseline.py")


class NotEnoughData(ValueError):
    """The database cannot support a training run: empty, or a span too short for the temporal split."""


@dataclass(frozen=True)
class TrainingPlan:
    start: date  # first feature day
    end: date  # last feature day
    label_source: str  # "truth" | "inactivity"
    grid: tuple[dict, ...]
    key: str  # data window + labels + code + grid + training day: a retried run finds its own registration


@dataclass(frozen=True)
class Promotion:
    row: ModelVersion
    promoted: bool
    decision: dict


def code_fingerprint() -> str:
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _MODEL_CODE:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()


def data_window(db: Session, *, end: date | None, days: int) -> tuple[date, date]:
    """(first, last) feature day: ``days`` days ending at ``end`` (default: the last complete UTC day of data),
    never before the first day with a session (earlier rows would describe tutors before any record of them)."""
    if days < 3:
        raise NotEnoughData(f"days must be at least 3 for a train/validation/test split, not {days}")
    try:
        until = observed_until(db)
    except ValueError:
        raise NotEnoughData("the database has no sessions or events: nothing to train on") from None
    last = until.astimezone(UTC).date() - timedelta(days=1)
    try:
        first = observed_from(db)
    except ValueError:
        raise NotEnoughData("the database has no sessions: nothing to train on") from None
    end = end or last
    if end > last:
        raise NotEnoughData(f"end {end} is after the last complete UTC day of data ({last})")
    start = max(end - timedelta(days=days - 1), first)
    if (end - start).days + 1 < 3:
        raise NotEnoughData(f"only {(end - start).days + 1} feature day(s) between {start} and {end}: need at least 3")
    return start, end


def plan_training(db: Session, *, settings: Settings, truth: ChurnTruth | None, end: date | None, days: int,
                  day: date | None = None) -> TrainingPlan:
    start, end = data_window(db, end=end, days=days)
    grid = GRID[:settings.model_grid_points] if settings.model_grid_points else GRID
    label_source = "truth" if truth is not None else "inactivity"
    day = day or utcnow().date()
    key = hashlib.sha256(json.dumps({"kind": CHURN, "start": start.isoformat(), "end": end.isoformat(),
                                     "labels": label_source, "grid": list(grid), "code": code_fingerprint(),
                                     "day": day.isoformat()}, sort_keys=True).encode()).hexdigest()
    return TrainingPlan(start=start, end=end, label_source=label_source, grid=grid, key=key)


def find_trained(db: Session, plan: TrainingPlan) -> ModelVersion | None:
    """The version an earlier attempt of the same plan registered, if any."""
    stmt = select(ModelVersion).where(ModelVersion.kind == CHURN, ModelVersion.data_start == plan.start,
                                      ModelVersion.data_end == plan.end)
    return next((r for r in db.execute(stmt).scalars() if (r.params or {}).get("training_key") == plan.key), None)


def build_segments(db: Session, *, settings: Settings, start: date, end: date, truth: ChurnTruth | None,
                   progress: Progress = lambda _line: None) -> Segments:
    """Feature rows for ``start``..``end``, their churn times, and the temporal 70/15/15 split."""
    spec = active_scoring_rules(settings.rules_dir).spec
    started = time.perf_counter()
    frame = build_features(db, start=start, end=end, rules=spec)
    seconds = time.perf_counter() - started
    progress(f"feature rows: {len(frame)} ({len(set(frame.tutor_ids.tolist()))} tutors x "
             f"{(end - start).days + 1} days) in {seconds:.1f}s")
    times = churn_times(db, frame, truth=truth)
    try:
        segs = segments(frame, times, data_start=observed_from(db))
    except ValueError as exc:
        raise NotEnoughData(f"cannot split {start}..{end}: {exc}") from None
    progress(f"labels: {times.source}; split: validation from {segs.split.val_start}, test from "
             f"{segs.split.test_start}, outcomes observed to {segs.split.observed_end}")
    return segs


def _figure_lines(figures: dict[str, dict[str, float]], segment: str) -> list[str]:
    lines = []
    for h in HORIZONS:
        r = figures.get(f"xgb_{h}d")
        if r is None:
            lines.append(f"{segment} {h}d: no closed label window")
            continue
        lr = figures.get(f"lr_{h}d", {})
        lines.append(f"{segment} {h}d: n {int(r['n'])}, churned {int(r['positives'])}, AUC {r['auc']:.3f} "
                     f"(LR {lr.get('auc', float('nan')):.3f}), precision@10% {r['precision_at_10']:.3f}, "
                     f"Brier {r['brier']:.4f}, ECE {r['ece']:.4f}")
    return lines


def train_candidate(db: Session, *, settings: Settings, truth: ChurnTruth | None, end: date | None = None,
                    days: int = 90, progress: Progress = lambda _line: None, day: date | None = None,
                    now: datetime | None = None) -> tuple[ModelVersion, Run, Segments]:
    """Trains on the last ``days`` feature days ending at ``end`` and registers the model as a candidate (with
    its validation and test figures, data window and label source), writing its model card beside it."""
    now = now or utcnow()
    plan = plan_training(db, settings=settings, truth=truth, end=end, days=days, day=day or now.date())
    progress(f"feature days {plan.start}..{plan.end}, labels from {plan.label_source}")
    segs = build_segments(db, settings=settings, start=plan.start, end=plan.end, truth=truth, progress=progress)
    try:
        run = fit(segs, grid=plan.grid, progress=progress)
    except ValueError as exc:
        raise NotEnoughData(f"cannot train on {plan.start}..{plan.end}: {exc}") from None
    val, test = evaluate(run, segs, 1), evaluate(run, segs, 2)
    for line in [*_figure_lines(val, "validation"), *_figure_lines(test, "test")]:
        progress(line)
    criterion = mean_auc(run.model, segs, 1)
    progress(f"criterion (mean validation AUC): {criterion:.4f}")
    params = {"training_key": plan.key, "days": days, "grid": list(plan.grid), "chosen": run.model.params,
              "calibration": run.model.calibration, "search": run.model.search, "counts": run.counts,
              "seconds": run.seconds, "code": code_fingerprint(),
              "split": {"val_start": str(segs.split.val_start), "test_start": str(segs.split.test_start),
                        "observed_end": str(segs.split.observed_end)}}
    row = registry.register(db, kind=CHURN, model=run.model, features=list(run.model.names), params=params,
                            metrics={"val": val, "test": test}, criterion=criterion, data_start=plan.start,
                            data_end=plan.end, label_source=segs.times.source,
                            training_rows=run.counts["train"]["rows"], models_dir=settings.models_dir, now=now)
    progress(f"registered {row.version} (candidate) in {settings.models_dir / row.path}")
    _write_card(run, segs, settings, row, progress)
    return row, run, segs


def _write_card(run: Run, segs: Segments, settings: Settings, row: ModelVersion, progress: Progress) -> None:
    path = write_card(run, segs, settings.models_dir / row.version, rules_spec=active_scoring_rules(settings.rules_dir).spec,
                      version=row.version, label_source=row.label_source)
    progress(f"model card: {path}")


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def decide_promotion(db: Session, candidate: ModelVersion, segs: Segments, *, settings: Settings, force: bool = False,
                     reason: str | None = None, actor: str | None = None, now: datetime | None = None) -> Promotion:
    """Champion/challenger: the candidate goes live when none is, or when its mean AUC on ``segs``' validation
    segment beats the live model's on the same rows by more than rules/scoring.yaml ``model.promotion_min_gain``;
    otherwise it is rejected with both figures and the reason. ``force`` promotes anyway, recording who and why."""
    now = now or utcnow()
    if candidate.status == ModelStatus.live.value:
        return Promotion(row=candidate, promoted=False, decision={**(candidate.decision or {}), "outcome": "already live"})
    model = registry.load_model(candidate, settings.models_dir)
    if tuple(model.names) != tuple(segs.frame.names):
        raise ValueError(f"{candidate.version} was trained on other features than the current pipeline's "
                         f"{len(segs.frame.names)}: it cannot be evaluated or scored here")
    min_gain = active_scoring_rules(settings.rules_dir).spec.model.promotion_min_gain
    cand_auc = mean_auc(model, segs, 1)
    decision: dict = {"criterion": "mean validation AUC over horizons with closed windows",
                      "validation": {"start": str(segs.split.val_start), "end": str(segs.split.test_start - 1)},
                      "candidate": candidate.version, "candidate_auc": _finite(cand_auc), "min_gain": min_gain,
                      "decided_at": now.isoformat()}
    live = registry.live_version(db, candidate.kind)
    if live is None:
        ok, why = True, "no live model"
    else:
        decision["live_version"] = live.version
        live_model = registry.load_model(live, settings.models_dir)
        if tuple(live_model.names) != tuple(segs.frame.names):
            ok, why = False, (f"live {live.version} was trained on other features ({len(live_model.names)}) than the "
                              f"candidate ({len(segs.frame.names)}): the two cannot be compared on the same rows")
        else:
            live_auc = mean_auc(live_model, segs, 1)
            decision["live_auc"], decision["gain"] = _finite(live_auc), _finite(cand_auc - live_auc)
            if not (math.isfinite(cand_auc) and math.isfinite(live_auc)):
                ok, why = False, "the validation segment has no horizon with both churned and retained tutors"
            elif cand_auc - live_auc > min_gain:
                ok, why = True, (f"candidate AUC {cand_auc:.4f} beats live {live_auc:.4f} by "
                                 f"{cand_auc - live_auc:+.4f} > {min_gain}")
            else:
                ok, why = False, (f"candidate AUC {cand_auc:.4f} does not beat live {live_auc:.4f} by more than "
                                  f"{min_gain} ({cand_auc - live_auc:+.4f})")
    decision["reason"] = why
    if not ok and force:
        decision.update(forced=True, forced_by=actor or "unknown", force_reason=reason or "", reason=f"forced: {why}")
        ok = True
    decision["outcome"] = "promoted" if ok else "rejected"
    if ok:
        row = registry.promote(db, candidate.version, decision=decision, now=now)
    else:
        row = registry.reject(db, candidate.version, decision=decision, now=now)
    return Promotion(row=row, promoted=ok, decision=row.decision or decision)
