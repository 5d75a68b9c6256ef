"""Tutors as JSON: the list with latest score and tier, metrics per window, the churn score explained, tiers."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from api.deps import DbDep, SettingsDep
from api.params import Day, Offset
from api.policy import STAFF
from api.schemas.tutors import (
    Component, FlagRead, MetricsReport, MetricsRow, ModelScore, ScoreReport, TierChange, TierName, TierPage,
    TutorPage, TutorSummary, Window,
)
from core.config import Settings
from core.errors import InputError, field_error
from domain.scoring.models import RiskLevel
from domain.tutors import service as tutor_service
from domain.tutors.models import TutorStatus
from rules.scoring import active_scoring_rules

router = APIRouter(prefix="/tutors", tags=["tutors"])

WINDOWS = {"7d": "7day", "30d": "30day", "90d": "90day"}
MAX_LIMIT = 500
NOT_FOUND = {404: {"description": "Unknown tutor"}, 422: {"description": "Invalid query parameter"}}
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _check_range(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise InputError([field_error(["query", "from"], "must be on or before 'to'", "value_error.date_range")])


def _found(call, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    try:
        return call(*args, **kwargs)
    except tutor_service.NotFound as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("", response_model=TutorPage, summary="Tutors with their latest churn score, risk and tier", dependencies=[Depends(STAFF)])
def list_tutors(
    db: DbDep,
    settings: SettingsDep,
    risk_level: list[RiskLevel] | None = Query(None, description="Repeat to match any of several"),
    tier: list[TierName] | None = Query(None, description="Repeat to match any of several"),  # type: ignore[valid-type]
    subject: str | None = Query(None, min_length=1, max_length=80, description="Exact subject, any case"),
    status: list[TutorStatus] | None = Query(None, description="Repeat to match any of several"),
    q: str | None = Query(None, min_length=1, max_length=64, description="Tutor id prefix (case-sensitive)"),
    sort: Literal[tutor_service.SORTS] = Query(  # type: ignore[valid-type]
        "-churn_score", description="Field to sort by; a leading '-' sorts descending. Unscored tutors come last."),
    limit: Limit = 50,
    offset: Offset = 0,
) -> TutorPage:
    filters = tutor_service.TutorFilters(
        risk_levels=[str(r) for r in risk_level or ()], tiers=tier or (), subject=subject,
        statuses=[str(s) for s in status or ()], id_prefix=q,
    )
    page = tutor_service.list_tutors(db, filters, tier_window=tutor_service.tier_window(settings), sort=sort, limit=limit,
                                     offset=offset)
    items = [TutorSummary.model_validate({**row, "tier": row["performance_tier"]}) for row in page.items]
    return TutorPage(items=items, total=page.total, limit=limit, offset=offset)


@router.get("/{tutor_id}/metrics", response_model=MetricsReport, responses=NOT_FOUND,
            summary="A tutor's metrics for one window: the latest row and the daily history", dependencies=[Depends(STAFF)])
def get_metrics(
    tutor_id: str,
    db: DbDep,
    window: Window = Query("30d", description="Metric window"),
    since: Day | None = Query(None, alias="from", description="First calculation day, inclusive"),
    until: Day | None = Query(None, alias="to", description="Last calculation day, inclusive"),
    limit: Limit = 50,
    offset: Offset = 0,
) -> MetricsReport:
    _check_range(since, until)
    latest, page = _found(tutor_service.metrics_history, db, tutor_id, WINDOWS[window], since=since, until=until,
                          limit=limit, offset=offset)
    return MetricsReport(
        tutor_id=tutor_id, window=window, latest=MetricsRow.model_validate(latest) if latest else None,
        items=[MetricsRow.model_validate(r) for r in page.items], total=page.total, limit=limit, offset=offset,
    )


@router.get("/{tutor_id}/score", response_model=ScoreReport,
            responses={**NOT_FOUND, 404: {"description": "Unknown tutor, or no prediction (on that date)"}},
            summary="A tutor's churn score explained: components, pattern flags, tier; the ML model's score beside it", dependencies=[Depends(STAFF)])
def get_score(
    tutor_id: str,
    db: DbDep,
    settings: SettingsDep,
    on: Day | None = Query(None, alias="date", description="Prediction day (UTC); the latest when omitted"),
) -> ScoreReport:
    view = _found(tutor_service.score, db, tutor_id, tier_window=tutor_service.tier_window(settings), on=on)
    p = view.prediction
    return ScoreReport(
        tutor_id=tutor_id, prediction_date=p.prediction_date, as_of=p.as_of, churn_score=p.churn_score,
        risk_level=p.risk_level, components=[Component(**c) for c in view.components],
        flags=[FlagRead(**f) for f in view.flags], explanation=view.explanation, model_version=p.model_version,
        rules_version=p.rules_version, rules_hash=p.rules_hash, tier=view.tier,
        performance_index=view.performance_index,
        tier_history=[TierChange.model_validate(r) for r in view.tier_history],
        model=ModelScore.model_validate(view.model) if view.model else None,
        drives_interventions=active_scoring_rules(settings.rules_dir).spec.model.drives_interventions,
        score_source=view.score_source, score_source_reason=view.score_source_reason,
    )


@router.get("/{tutor_id}/tiers", response_model=TierPage, responses=NOT_FOUND,
            summary="A tutor's tier history, newest first", dependencies=[Depends(STAFF)])
def get_tiers(
    tutor_id: str,
    db: DbDep,
    since: Day | None = Query(None, alias="from", description="First day (UTC), inclusive"),
    until: Day | None = Query(None, alias="to", description="Last day (UTC), inclusive"),
    limit: Limit = 50,
    offset: Offset = 0,
) -> TierPage:
    _check_range(since, until)
    page = _found(
        tutor_service.tier_history, db, tutor_id, limit=limit, offset=offset,
        since=tutor_service.day_start(since) if since else None,
        until=tutor_service.day_start(until + timedelta(days=1)) if until else None,
    )
    return TierPage(tutor_id=tutor_id, items=[TierChange.model_validate(r) for r in page.items], total=page.total,
                    limit=limit, offset=offset)
