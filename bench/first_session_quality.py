"""The first-session model's figures (PRD Model 2) on a 90-day world: AUC, Brier score and base rate of a poor
first session (rated < 3) on the temporal test split, calibration, what an alert at the rules' threshold would
do, against the one-feature rule "the tutor's 30-day average rating", plus the cost of scoring one booking.

The world: ``--world FILE.db`` copies an existing SQLite world to a temporary folder first (the original is only
read), ``--db URL`` uses a database as it is, and without either a fresh 90-day world
is simulated (250 tutors, 3,000 sessions a day, about 1.5 minutes). The last ``--days`` (90) days of sessions are
used. Labels are the sessions' own ratings: no ground truth is read.

Prints `name: value unit` lines and PASS/FAIL for: test AUC > 0.60 (chance is 0.5) and a positive Brier skill
score (better than always answering the base rate). Exit 0 when both pass, 1 otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backfill_speed import SESSIONS_PER_DAY, fresh_database, peak_rss_mb  # noqa: E402
from core.config import PACKAGE_ROOT  # noqa: E402
from core.db import get_engine  # noqa: E402
from domain.first_sessions.training import data_window  # noqa: E402
from domain.students.models import Student  # noqa: E402
from ml import metrics  # noqa: E402
from ml.first_session import FEATURES, Upcoming, describe, first_sessions  # noqa: E402
from ml.first_session_model import train  # noqa: E402
from rules.first_session import load_first_session_rules  # noqa: E402
from rules.scoring import load_scoring_rules  # noqa: E402

MIN_AUC = 0.60


def figure(name: str, value: float, unit: str = "") -> None:
    # Four decimals: AUC and Brier differences that matter are in the third.
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4f}"
    print(f"{name}: {text} {unit}".rstrip(), flush=True)


@contextlib.contextmanager
def world(args: argparse.Namespace):  # noqa: ANN201 - yields a database URL
    if args.db:
        yield args.db
        return
    if args.world:
        with tempfile.TemporaryDirectory(prefix="tp_bench_fs_") as tmp:
            started = time.perf_counter()
            copy = Path(tmp) / "world.db"
            shutil.copy(args.world, copy)  # the original is never opened for writing
            print(f"# copied {args.world} in {time.perf_counter() - started:.0f}s", flush=True)
            yield f"sqlite:///{copy}"
            get_engine(f"sqlite:///{copy}").dispose()
        return
    from synth.backfill import backfill

    with contextlib.contextmanager(fresh_database)("sqlite") as url:
        started = time.perf_counter()
        backfill(get_engine(url), days=args.days, seed=args.seed, n_tutors=250, sessions_per_day=SESSIONS_PER_DAY,
                 progress=lambda _line: None)
        print(f"# {args.days}-day simulation took {time.perf_counter() - started:.0f}s", flush=True)
        yield url


def booking_latency(db: Session, table, scoring, model, n: int = 5) -> list[float]:  # noqa: ANN001
    """Seconds to describe and score one upcoming first session, as the alert endpoint does."""
    tutors = list(dict.fromkeys(table.tutor_ids[-50:].tolist()))[:n]
    student = db.execute(select(Student.student_id).limit(1)).scalar_one()
    day = table.starts.max().astype(datetime).date() + timedelta(days=1)
    out = []
    for t in tutors:
        item = Upcoming(key="bench", tutor_id=t, student_id=student, subject=str(table.X[0, FEATURES.index("subject")]),
                        scheduled_start=datetime(day.year, day.month, day.day, 15).astimezone())
        started = time.perf_counter()
        model.predict(describe(db, [item], [day], scoring=scoring).X)
        out.append(time.perf_counter() - started)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, help="a SQLite world file, copied before use (read only)")
    parser.add_argument("--db", help="a database URL used as it is")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--end", type=date.fromisoformat, help="last session day (default: the last complete one)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rules = load_first_session_rules(PACKAGE_ROOT / "rules" / "first_session.yaml").spec
    scoring = load_scoring_rules(PACKAGE_ROOT / "rules" / "scoring.yaml").spec
    with world(args) as url, Session(get_engine(url)) as db:
        start, end = data_window(db, end=args.end, days=args.days, now=datetime.now().astimezone())
        print(f"# first sessions scheduled {start}..{end}", flush=True)
        started = time.perf_counter()
        table = first_sessions(db, start=start, end=end, scoring=scoring)
        figure("dataset_seconds", time.perf_counter() - started, "s")
        t = rules.training
        run = train(table, poor_below=rules.poor_rating_below, threshold=rules.alert_threshold, c_grid=t.c_grid,
                    min_sessions=t.min_first_sessions, min_poor=t.min_poor_per_segment,
                    progress=lambda line: print(f"# {line}", flush=True))
        latency = booking_latency(db, table, scoring, run.model)
    figure("first_sessions", len(table))
    for name, seg in (("val", 1), ("test", 2)):
        r = run.metrics[name]
        figure(f"{name}_sessions", r["n"])
        for key in ("base_rate", "auc", "brier", "brier_skill", "ece", "log_loss", "precision_at_10", "lift_at_10"):
            figure(f"{name}_{key}", r[key] if r[key] is not None else math.nan)
    test = run.metrics["test"]
    alert = test["alert"]
    figure("alert_threshold", alert["threshold"])
    figure("test_alert_share", alert["share"])
    figure("test_alert_precision", alert["precision"] if alert["precision"] is not None else math.nan)
    figure("test_alert_recall", alert["recall"] if alert["recall"] is not None else math.nan)
    seg = run.segments == 2
    rating = table.column("avg_rating_30d")[seg].astype(np.float64)
    y = table.poor(rules.poor_rating_below)[seg]
    figure("test_auc_rating_rule", metrics.auc(y, -np.nan_to_num(rating, nan=float(np.nanmedian(rating)))))
    figure("training_seconds", run.seconds, "s")
    figure("booking_score_p50", float(np.median(latency)) * 1000, "ms")
    figure("peak_rss", peak_rss_mb(), "MB")
    for row in test["calibration"]:
        print(f"# calibration {row['bin']}: n {row['n']}, predicted {row['predicted']:.3f}, observed {row['observed']:.3f}")
    for c in run.model.coefficients()[:8]:
        print(f"# {c['text']}")
    ok_auc = test["auc"] is not None and test["auc"] > MIN_AUC
    ok_brier = test["brier_skill"] is not None and test["brier_skill"] > 0
    print(f"{'PASS' if ok_auc else 'FAIL'}: test AUC {test['auc']:.3f} > {MIN_AUC}")
    print(f"{'PASS' if ok_brier else 'FAIL'}: Brier skill {test['brier_skill']:.3f} > 0 (base rate {test['base_rate']:.3f})")
    return 0 if ok_auc and ok_brier else 1


if __name__ == "__main__":
    sys.exit(main())
