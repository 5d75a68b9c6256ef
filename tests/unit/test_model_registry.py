"""The model registry on a migrated SQLite file: files are hash-checked on every load, the database itself allows
one live version per kind, versions list newest first, and promotion retires the previous live version."""
from __future__ import annotations

import pickle
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.db import get_engine
from core.migrate import upgrade
from domain.model_registry import service as registry
from domain.model_registry.models import ModelVersion

T0 = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


class Stub:
    """A picklable stand-in for a trained model: the registry stores any object, it never calls it."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.names = ("a", "b")


@pytest.fixture
def db(tmp_path: Path):  # noqa: ANN201
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade(url)
    engine = get_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


def _register(db: Session, models: Path, weight: float, at: datetime, kind: str = "churn") -> ModelVersion:
    return registry.register(db, kind=kind, model=Stub(weight), features=["a", "b"], params={"w": weight},
                             metrics={"val": {"xgb_7d": {"auc": float("nan"), "n": 3}}}, criterion=float("nan"),
                             data_start=date(2026, 9, 1), data_end=date(2026, 11, 29), label_source="truth",
                             training_rows=100, models_dir=models, now=at)


def test_register_writes_the_file_and_a_candidate_row(db: Session, tmp_path: Path) -> None:
    row = _register(db, tmp_path / "models", 1.0, T0)
    db.commit()
    assert row.status == "candidate" and row.kind == "churn"
    assert row.version.startswith("churn-20261130T010000000Z-") and row.version.endswith(row.sha256[:8])
    path = tmp_path / "models" / row.path
    assert path.exists() and path.parent.name == row.version
    # NaN has no JSON form (PostgreSQL refuses it): stored as null, criterion too.
    fresh = registry.get_version(db, row.version)
    assert fresh.metrics["val"]["xgb_7d"] == {"auc": None, "n": 3} and fresh.criterion is None
    assert registry.load_model(fresh, tmp_path / "models").weight == 1.0


def test_json_safe_turns_numpy_and_non_finite_values_into_json() -> None:
    value = {"auc": np.float32(0.5), "nan": np.float64("nan"), "rows": np.arange(3), 7: (np.int64(2), float("inf")),
             "day": date(2026, 11, 30)}
    assert registry.json_safe(value) == {"auc": 0.5, "nan": None, "rows": [0, 1, 2], "7": [2, None],
                                         "day": "2026-11-30"}


def test_a_tampered_or_missing_file_is_refused(db: Session, tmp_path: Path) -> None:
    models = tmp_path / "models"
    row = _register(db, models, 1.0, T0)
    assert registry.load_model(row, models).weight == 1.0  # loaded (and cached) once
    path = models / row.path
    path.write_bytes(pickle.dumps(Stub(99.0)))  # a different model under the same name
    with pytest.raises(registry.RegistryError, match="does not match the registry"):
        registry.load_model(row, models)
    path.unlink()
    with pytest.raises(registry.RegistryError, match="missing"):
        registry.load_model(row, models)


def test_the_database_allows_one_live_version_per_kind(db: Session, tmp_path: Path) -> None:
    a = _register(db, tmp_path, 1.0, T0)
    b = _register(db, tmp_path, 2.0, T0 + timedelta(hours=1))
    other_kind = _register(db, tmp_path, 3.0, T0, kind="first_session")
    db.commit()
    db.execute(update(ModelVersion).where(ModelVersion.version.in_([a.version, other_kind.version]))
               .values(status="live"))
    db.commit()  # one live per kind: fine
    with pytest.raises(IntegrityError):
        db.execute(update(ModelVersion).where(ModelVersion.version == b.version).values(status="live"))
        db.commit()
    db.rollback()
    assert {r.version for r in registry.list_versions(db) if r.status == "live"} == {a.version, other_kind.version}


def test_promote_retires_the_previous_live_and_reject_records_the_decision(db: Session, tmp_path: Path) -> None:
    a = _register(db, tmp_path, 1.0, T0)
    b = _register(db, tmp_path, 2.0, T0 + timedelta(hours=1))
    c = _register(db, tmp_path, 3.0, T0 + timedelta(hours=2))
    registry.promote(db, a.version, decision={"reason": "no live model"}, now=T0)
    db.commit()
    registry.promote(db, b.version, decision={"reason": "better"}, now=T0 + timedelta(hours=1))
    db.commit()
    assert registry.live_version(db, "churn").version == b.version
    old = registry.get_version(db, a.version)
    assert old.status == "retired" and old.retired_at == T0 + timedelta(hours=1)
    assert registry.get_version(db, b.version).decision == {"reason": "better", "replaced": a.version}
    again = registry.promote(db, b.version, decision={"reason": "twice"}, now=T0 + timedelta(hours=3))
    assert again.decision["reason"] == "better"  # a repeated promotion changes nothing
    registry.reject(db, c.version, decision={"reason": "worse", "candidate_auc": 0.5, "live_auc": 0.8},
                    now=T0 + timedelta(hours=2))
    db.commit()
    rejected = registry.get_version(db, c.version)
    assert rejected.status == "rejected" and rejected.decision["live_auc"] == 0.8
    with pytest.raises(registry.RegistryError, match="is live"):
        registry.reject(db, b.version, decision={}, now=T0)
    with pytest.raises(registry.RegistryError, match="unknown model version"):
        registry.promote(db, "churn-nope", decision={}, now=T0)


def test_versions_list_newest_first_and_by_kind(db: Session, tmp_path: Path) -> None:
    rows = [_register(db, tmp_path, float(i), T0 + timedelta(minutes=i)) for i in range(3)]
    fs = _register(db, tmp_path, 9.0, T0, kind="first_session")
    db.commit()
    assert [r.version for r in registry.list_versions(db, "churn")] == [r.version for r in reversed(rows)]
    assert [r.version for r in registry.list_versions(db, "first_session")] == [fs.version]
    assert len(registry.list_versions(db)) == 4
    # The same bytes registered in the same second are the same version, not a second row.
    assert _register(db, tmp_path, 0.0, T0).version == rows[0].version
    assert len(registry.list_versions(db)) == 4
