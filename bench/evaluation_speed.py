"""Issue 4's evaluation budgets on a 90-day backfill: recompute-all under 10 s on SQLite, a single tutor's
re-evaluation after a session under 100 ms p95, and tier shares within ±5 points of the PRD targets.

Prints `name: value unit` lines and PASS/FAIL per budget. `--db URL` reuses an existing backfilled database
(it is written to: predictions, metrics and tier rows); by default a fresh SQLite file is backfilled first
(~75 s) and thrown away. `--postgres` also runs the same figures on a fresh PostgreSQL database.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backfill_speed import (  # noqa: E402
    N_TUTORS, SESSIONS_PER_DAY, every_tenth_day, figure, fresh_database, peak_rss_mb, postgres_reachable)
from core.db import get_engine, session_scope  # noqa: E402
from domain.evaluation.batch import evaluate_population  # noqa: E402
from domain.evaluation.service import evaluate_tutor  # noqa: E402
from domain.sessions.models import SessionIn  # noqa: E402
from domain.sessions.service import ingest_sessions  # noqa: E402
from rules.scoring import TIERS, load_scoring_rules  # noqa: E402

RULES = load_scoring_rules(Path(__file__).resolve().parent.parent / "rules" / "scoring.yaml")
RECOMPUTE_BUDGET_S = 10.0
SINGLE_P95_BUDGET_MS = 100.0
SHARE_TOLERANCE = 0.05


def verdict(ok: bool, what: str) -> None:
    print(f"{'PASS' if ok else 'FAIL'}: {what}", flush=True)


def _backfill_end(url: str) -> datetime:
    from sqlalchemy import text

    with get_engine(url).connect() as conn:
        end = conn.execute(text("select max(backfill_end) from synth_world")).scalar()
    end = datetime.fromisoformat(str(end)) if not isinstance(end, datetime) else end
    return end if end.tzinfo else end.replace(tzinfo=UTC)


def recompute_all(url: str, tag: str, *, as_of: datetime) -> None:
    engine = get_engine(url)
    for label, review in (("review", True), ("rollup", False)):
        started = time.perf_counter()
        with session_scope(engine) as db:
            r = evaluate_population(db, as_of=as_of, rules=RULES, review=review)
        seconds = time.perf_counter() - started
        figure(f"recompute_all_{label}_{tag}_seconds", seconds, "s")
        figure(f"recompute_all_{label}_{tag}_tutors", r.tutors, "tutors")
        if tag == "sqlite":
            verdict(seconds < RECOMPUTE_BUDGET_S, f"recompute all ({label}, {r.tutors} tutors) {seconds:.1f}s < {RECOMPUTE_BUDGET_S:.0f}s")
    figure(f"active_tutors_{tag}", r.active, "tutors")
    for tier in TIERS:
        share, target = r.tier_counts[tier] / r.active, RULES.spec.tiers.shares[tier]
        figure(f"tier_share_{tier.lower().replace(' ', '_')}_{tag}", share * 100, "%")
        verdict(abs(share - target) <= SHARE_TOLERANCE, f"{tier} {share:.1%} within ±5 points of {target:.0%}")
    for level in ("Low", "Medium", "High", "Critical"):
        figure(f"risk_share_{level.lower()}_{tag}", r.risk_counts.get(level, 0) / r.active * 100, "%")


def single_after_session(url: str, tag: str, *, as_of: datetime, runs: int) -> None:
    """Ingest one session for a random tutor, then time that tutor's evaluation (what the workflow activity does)."""
    from sqlalchemy import text

    engine = get_engine(url)
    with engine.connect() as conn:
        pairs = conn.execute(text("select tutor_id, student_id, subject from sessions where scheduled_start > :t "
                                  "group by tutor_id, student_id, subject"), {"t": as_of - timedelta(days=3)}).all()
    # Steady state: the tutor workflows have evaluated the backfill already, so each evaluation below marks only
    # the one new session (a first-ever evaluation after a bulk import also marks ~1,000 rows, once).
    with engine.begin() as conn:
        conn.execute(text("update sessions set evaluated_at = :t where evaluated_at is null"), {"t": as_of})
    rng = random.Random(4)
    timings = []
    for i in range(runs):
        tutor, student, subject = rng.choice(pairs)
        when = as_of + timedelta(minutes=5 * i)
        payload = SessionIn(session_id=f"bench-eval-{i}-{tutor}", tutor_id=tutor, student_id=student, session_number=9,
                            scheduled_start=when, actual_start=when, duration_minutes=60, subject=subject,
                            engagement_score=0.8, student_rating=4.5, learning_objectives_met=True)
        with session_scope(engine) as db:
            ingest_sessions(db, [payload], many=False)
        started = time.perf_counter()
        with session_scope(engine) as db:
            evaluate_tutor(db, tutor, as_of=when + timedelta(minutes=1), rules=RULES)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p50, p95 = statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]
    figure(f"single_tutor_eval_{tag}_p50_ms", p50, "ms")
    figure(f"single_tutor_eval_{tag}_p95_ms", p95, "ms")
    verdict(p95 < SINGLE_P95_BUDGET_MS, f"single tutor re-evaluation after a session p95 {p95:.0f}ms < {SINGLE_P95_BUDGET_MS:.0f}ms ({tag})")


def measure(url: str, tag: str, runs: int) -> None:
    as_of = _backfill_end(url)
    # The daily rollup's as_of is midnight UTC; the budget is for a full 90 days behind it.
    midnight = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    recompute_all(url, tag, as_of=midnight)
    single_after_session(url, tag, as_of=as_of, runs=runs)
    figure(f"peak_rss_{tag}_mb", peak_rss_mb(), "MB")


def backfilled(kind: str, days: int, seed: int):  # noqa: ANN201
    from synth.backfill import backfill

    ctx = fresh_database(kind)
    url = ctx.__enter__()
    started = time.perf_counter()
    backfill(get_engine(url), days=days, seed=seed, n_tutors=N_TUTORS, sessions_per_day=SESSIONS_PER_DAY,
             progress=every_tenth_day)
    print(f"# {kind}: {days}-day backfill took {time.perf_counter() - started:.0f}s", flush=True)
    return ctx, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an already backfilled database URL to measure (written to)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200, help="single-tutor evaluations to time")
    parser.add_argument("--postgres", action="store_true", help="also measure a fresh PostgreSQL backfill")
    args = parser.parse_args()
    if args.db:
        measure(args.db, "sqlite" if args.db.startswith("sqlite") else "postgres", args.runs)
        return
    kinds = ["sqlite"] + (["postgresql"] if args.postgres and postgres_reachable() else [])
    for kind in kinds:
        ctx, url = backfilled(kind, args.days, args.seed)
        try:
            measure(url, "sqlite" if kind == "sqlite" else "postgres", args.runs)
        finally:
            ctx.__exit__(None, None, None)


if __name__ == "__main__":
    main()
