"""Evaluations from the command line: the whole population in-process, or signalling tutor workflows."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.config import Settings
from core.temporal import connect, notify_sessions_ingested
from core.types import utcnow


async def signal_all_tutors(settings: Settings, tutor_ids: list[str]) -> None:
    """Signal-with-start every tutor's lifecycle workflow so it evaluates as of now and starts interventions.

    If Temporal is unreachable nothing is lost: the sessions stay pending and the worker's sweep picks them up.
    """
    try:
        client = await connect(settings)
    except Exception as exc:  # noqa: BLE001
        print(f"Temporal at {settings.temporal_address} unreachable ({exc}); the sweep will evaluate when a worker runs")
        return
    for start in range(0, len(tutor_ids), 50):
        chunk = tutor_ids[start:start + 50]
        await notify_sessions_ingested(client, {t: [] for t in chunk}, task_queue=settings.temporal_task_queue)
        print(f"signalled {min(start + 50, len(tutor_ids))}/{len(tutor_ids)} tutor workflows", flush=True)


def evaluate_recent(settings: Settings, *, end: datetime, days: int = 7) -> None:
    """Ranks the population, then evaluates it at each of the last ``days`` UTC midnights and at ``end``.

    A backfilled world otherwise has one day of scores, so every "for N days" trigger (H1: High or Critical
    for 7+ days) would wait N real days after the demo starts; this stores the daily rows the rollup would have.
    """
    midnight = end.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    evaluate_all(settings, as_of=midnight - timedelta(days=days), review=True)
    for back in range(days - 1, -1, -1):
        evaluate_all(settings, as_of=midnight - timedelta(days=back))
    evaluate_all(settings, as_of=end)


def evaluate_all(settings: Settings, *, as_of: datetime | None = None, review: bool = False, trends: bool = False) -> int:
    """Re-evaluates every tutor in-process (what the daily rollup activity does), printing progress."""
    from core.db import get_engine, session_scope
    from domain.evaluation.batch import evaluate_population, weekly_trends
    from rules.scoring import active_scoring_rules

    as_of = as_of or utcnow()
    rules = active_scoring_rules(settings.rules_dir)
    engine = get_engine(settings.database_url)
    with session_scope(engine) as db:
        r = evaluate_population(db, as_of=as_of, rules=rules, review=review, progress=lambda line: print(line, flush=True))
    print(f"evaluated {r.tutors} tutors ({r.active} active) as of {as_of.isoformat()} in {r.seconds:.1f}s"
          + (f"; tier cut-offs recomputed ({r.review})" if r.review else ""))
    if r.active:
        print("tiers (active tutors): " + ", ".join(f"{t} {n} ({n / r.active:.0%})" for t, n in r.tier_counts.items()))
        print("risk (active tutors): " + ", ".join(f"{k} {v}" for k, v in sorted(r.risk_counts.items())))
    if trends:
        with session_scope(engine) as db:
            n = weekly_trends(db, as_of=as_of, rules=rules)
        print(f"stored 7-day moving averages for {n} tutors")
    return r.tutors
