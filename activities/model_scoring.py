"""The live churn model's daily scores on every tutor's prediction row (domain/model_scoring)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from temporalio import activity

from core.config import Settings
from core.db import session_scope
from core.types import utcnow
from domain.model_registry.service import live_version, load_model
from domain.model_scoring.service import score_day
from rules.scoring import active_scoring_rules
from workflows.inputs import ScorePopulationInput, ScorePopulationResult

CHURN = "churn"


@dataclass
class ModelScoringActivities:
    engine: Engine
    settings: Settings

    @activity.defn
    def score_population(self, inp: ScorePopulationInput) -> ScorePopulationResult:
        """Scores the day with whichever churn model is live now. Before the first model is trained and
        promoted there is none: that is a fresh install's normal state, so it reports version None and scores
        nothing instead of failing (the rule score keeps driving either way)."""
        now = utcnow()
        day = inp.day_date or now.date()
        rules = active_scoring_rules(self.settings.rules_dir)
        with session_scope(self.engine) as db:
            live = live_version(db, CHURN)
            if live is None:
                activity.logger.info("model scoring %s: no live churn model yet, nothing scored", day)
                return ScorePopulationResult(version=None, scored=0, day=day)
            # A missing or altered model file raises here, and Temporal retries: the file may be mid-copy.
            model = load_model(live, self.settings.models_dir)
            report = score_day(db, model=model, version=live.version, day=day, rules=rules, tutor_ids=inp.tutor_ids,
                               now=now, progress=lambda line: activity.logger.info("model scoring %s", line))
        return ScorePopulationResult(version=report.version, scored=report.scored, day=day,
                                     unscored=len(report.unscored), risk_changed=report.risk_changed)
