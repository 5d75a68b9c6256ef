"""Activities of the periodic evaluation: the daily rollup / monthly tier review and the weekly trends."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client

from core.config import Settings
from core.db import session_scope
from core.temporal import notify_sessions_ingested
from core.types import utcnow
from domain.evaluation.batch import evaluate_population, weekly_trends
from rules.scoring import active_scoring_rules
from workflows.inputs import PopulationInput, RollupSummary, SignalTutorsInput, TrendsInput, TrendsSummary


@dataclass
class RollupActivities:
    engine: Engine
    settings: Settings
    client: Client

    @activity.defn
    def evaluate_population(self, inp: PopulationInput) -> RollupSummary:
        rules = active_scoring_rules(self.settings.rules_dir)
        with session_scope(self.engine) as db:
            # Progress lines go to the activity log: a rollup that slows down shows where its time went.
            r = evaluate_population(db, as_of=inp.as_of, rules=rules, review=inp.review, now=utcnow(),
                                    progress=lambda line: activity.logger.info("rollup %s", line))
        return RollupSummary(as_of=r.as_of, tutors=r.tutors, active=r.active, seconds=r.seconds, review=r.review,
                             tier_counts=r.tier_counts, risk_counts=r.risk_counts, risk_changed=r.risk_changed,
                             status_changed=r.status_changed)

    @activity.defn
    def store_weekly_trends(self, inp: TrendsInput) -> TrendsSummary:
        assert inp.as_of is not None, "the workflow fixes as_of before calling"
        rules = active_scoring_rules(self.settings.rules_dir)
        with session_scope(self.engine) as db:
            n = weekly_trends(db, as_of=inp.as_of, rules=rules, now=utcnow())
        return TrendsSummary(as_of=inp.as_of, tutors=n)

    @activity.defn
    async def signal_tutors(self, inp: SignalTutorsInput) -> int:
        """Wakes each tutor's lifecycle workflow so it re-decides interventions on its new risk level."""
        await notify_sessions_ingested(self.client, {t: [] for t in inp.tutor_ids},
                                       task_queue=self.settings.temporal_task_queue)
        return len(inp.tutor_ids)
