"""Pre-session alerts (PRD Model 2 "Use case"): a booking system posts an upcoming first session; staff list and
acknowledge the alerts. The probability and its reasons are staff-facing only; the tutor gets a prep reminder
whose text never carries either."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from api.deps import DbDep, SettingsDep
from api.params import Offset
from api.policy import StaffActor as StaffDep
from api.policy import BOOKING
from core.types import utcnow
from domain.first_sessions import service
from domain.first_sessions.models import AlertPage, AlertRead, BookingIn, RiskResult
from rules.first_session import active_first_session_rules
from rules.scoring import active_scoring_rules

router = APIRouter(prefix="/first-sessions", tags=["first sessions"])

WHO = {401: {"description": "Not signed in"}, 403: {"description": "Not a staff user"}}
RISK = {404: {"description": "Unknown tutor or student"},
        409: {"description": "The booking id was scored before with other details"},
        422: {"description": "Invalid body (the detail names the field), a start not in the future, or a pair that "
                             "has met before"},
        503: {"description": "No usable live first-session model; nothing was stored"}}


@router.post("/risk", response_model=RiskResult, status_code=201, responses={200: {"description": "Scored before"}, **RISK},
             summary="Score an upcoming first session; raise a pre-session alert at or above the rules' threshold", dependencies=[Depends(BOOKING)])
def assess(booking: BookingIn, db: DbDep, settings: SettingsDep, response: Response) -> RiskResult:
    try:
        result = service.assess_booking(
            db, booking, rules=active_first_session_rules(settings.rules_dir),
            scoring=active_scoring_rules(settings.rules_dir).spec, models_dir=settings.models_dir, now=utcnow())
    except service.UnknownRecord as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except service.BookingConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except service.ModelUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    db.commit()  # stored before the caller hears of it
    if result.status == "existing":
        response.status_code = 200
    return result


@router.get("/alerts", response_model=AlertPage, responses=WHO,
            summary="Pre-session alerts, soonest session first (default: open ones not yet started)")
def alerts(
    db: DbDep,
    _actor: StaffDep,
    status: Annotated[list[Literal["open", "acknowledged"]] | None, Query(description="repeat for several")] = None,
    tutor_id: str | None = None,
    subject: str | None = None,
    min_probability: Annotated[float | None, Query(ge=0, le=1)] = None,
    include_past: Annotated[bool, Query(description="also alerts whose session has started")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> AlertPage:
    rows, total = service.list_alerts(db, now=utcnow(), statuses=tuple(status or ["open"]), tutor_id=tutor_id,
                                      subject=subject, min_probability=min_probability, include_past=include_past,
                                      limit=limit, offset=offset)
    return AlertPage(items=[AlertRead.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertRead,
             responses={**WHO, 404: {"description": "No such alert"}}, summary="Mark an alert as seen")
def acknowledge(alert_id: str, db: DbDep, actor: StaffDep) -> AlertRead:
    try:
        row = service.acknowledge(db, alert_id, by=actor.user_id, now=utcnow())
    except service.UnknownRecord as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    db.commit()
    return AlertRead.model_validate(row)
