"""The model registry: a trained model becomes a file under ``models_dir`` plus a row, and at most one version per
kind is live.

Files are pickles, and unpickling runs code: the sha256 recorded in the row when the file was written is checked
before every load, so a file replaced or altered behind the registry's back is refused rather than executed.
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import threading
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from domain.model_registry.models import ModelStatus, ModelVersion

MODEL_FILE = "model.pkl"


class RegistryError(RuntimeError):
    """A version that cannot be used: unknown, its file missing, or its file not the one registered."""


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has no NaN; PostgreSQL refuses it) and numpy scalars as
    Python numbers, so metrics and decisions store the same on both databases."""
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array -> Python number or list
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def version_id(kind: str, trained_at: datetime, sha256: str) -> str:
    """kind + training time (UTC, to the millisecond: two fast trainings of the same data in one second are two
    runs to compare, not one) + the first 8 hex digits of the file's hash."""
    return f"{kind}-{trained_at.strftime('%Y%m%dT%H%M%S')}{trained_at.microsecond // 1000:03d}Z-{sha256[:8]}"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # a reader never sees half a file


def register(db: Session, *, kind: str, model: object, features: list[str], params: dict, metrics: dict,
             criterion: float | None, data_start: date, data_end: date, label_source: str, training_rows: int,
             models_dir: Path, now: datetime) -> ModelVersion:
    """Writes the model's file and its row (status candidate). The row is flushed, not committed: the caller's
    transaction decides, and a rolled-back registration leaves at most an unreferenced folder."""
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    sha = hashlib.sha256(data).hexdigest()
    version = version_id(kind, now, sha)
    existing = db.get(ModelVersion, version)
    if existing is not None:  # the same bytes registered at the same instant: the same version
        return existing
    rel = f"{version}/{MODEL_FILE}"
    _write_atomically(Path(models_dir) / rel, data)
    if criterion is not None and not math.isfinite(criterion):
        criterion = None
    row = ModelVersion(version=version, kind=kind, status=ModelStatus.candidate.value, path=rel, sha256=sha,
                       features=list(features), params=json_safe(params), metrics=json_safe(metrics),
                       criterion=criterion, data_start=data_start, data_end=data_end, label_source=label_source,
                       training_rows=int(training_rows), created_at=now)
    db.add(row)
    db.flush()
    return row


# Loaded models by (file, hash, size, mtime): a file changed on disk is re-read and re-checked.
_cache: dict[tuple[str, str, int, int], object] = {}
_cache_lock = threading.Lock()


def model_path(row: ModelVersion, models_dir: Path) -> Path:
    return Path(models_dir) / row.path


def load_model(row: ModelVersion, models_dir: Path) -> object:
    """The version's model, after checking its file against the sha256 the registry recorded."""
    path = model_path(row, models_dir)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise RegistryError(f"model file for {row.version} is missing: {path}") from None
    key = (str(path.resolve()), row.sha256, stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != row.sha256:
        raise RegistryError(f"model file for {row.version} does not match the registry: sha256 {actual[:12]}... "
                            f"on disk, {row.sha256[:12]}... registered ({path}); refusing to load it")
    model = pickle.loads(data)  # noqa: S301 - the bytes are the ones the registry wrote (hash checked above)
    with _cache_lock:
        _cache[key] = model
    return model


def live_version(db: Session, kind: str) -> ModelVersion | None:
    stmt = select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.status == ModelStatus.live.value)
    return db.execute(stmt).scalars().first()


def get_version(db: Session, version: str) -> ModelVersion | None:
    return db.get(ModelVersion, version)


def list_versions(db: Session, kind: str | None = None) -> list[ModelVersion]:
    """Newest first."""
    stmt = select(ModelVersion)
    if kind is not None:
        stmt = stmt.where(ModelVersion.kind == kind)
    return list(db.execute(stmt.order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())).scalars())


def _require(db: Session, version: str) -> ModelVersion:
    row = db.get(ModelVersion, version, with_for_update=True)
    if row is None:
        raise RegistryError(f"unknown model version {version!r}")
    return row


def promote(db: Session, version: str, *, decision: dict, now: datetime) -> ModelVersion:
    """Makes ``version`` the live one of its kind and retires the previous live version, in the caller's
    transaction. Already live: returned unchanged (a retried promotion writes nothing twice)."""
    row = _require(db, version)
    if row.status == ModelStatus.live.value:
        return row
    current = live_version(db, row.kind)
    if current is not None:
        current.status, current.retired_at = ModelStatus.retired.value, now
        # The retirement reaches the database before the new live row: the one-live-per-kind index checks
        # each statement, and a concurrent promotion of the same kind fails here instead of leaving two.
        db.flush()
    row.status, row.promoted_at, row.retired_at = ModelStatus.live.value, now, None
    row.decision = json_safe({**decision, "replaced": current.version if current is not None else None})
    db.flush()
    return row


def reject(db: Session, version: str, *, decision: dict, now: datetime) -> ModelVersion:
    """Records that ``version`` lost the champion/challenger comparison (the figures and reason in ``decision``)."""
    row = _require(db, version)
    if row.status == ModelStatus.live.value:
        raise RegistryError(f"{version} is live: promote another version instead of rejecting the live one")
    if row.status == ModelStatus.rejected.value:
        return row
    row.status = ModelStatus.rejected.value
    row.decision = json_safe({**decision, "decided_at": now})
    db.flush()
    return row
