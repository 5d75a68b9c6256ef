"""Interventions, their effectiveness and the system KPIs as JSON. Read-only: tasks are worked through
/api/v1/queue, whose actions are Updates on each case's workflow."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import DbDep, SettingsDep
from api.params import Instant, Offset
from api.policy import STAFF
from api.routes.queue import row_read
from api.schemas.queue import EffectivenessReportRead, InterventionRow, KindFilter
from core.types import utcnow
from domain.dashboard import service as dashboard_service
from domain.interventions import effectiveness as effectiveness_service
from domain.interventions import queries
from rules.interventions import active_intervention_rules

router = APIRouter(tags=["interventions"])


class InterventionPage(BaseModel):
    items: list[InterventionRow]
    total: int
    limit: int
    offset: int


class KpiReport(BaseModel):
    as_of: datetime
    days: int  # the period length; each KPI's change compares with the same length before it
    kpis: list[dashboard_service.Kpi]


@router.get("/interventions", response_model=InterventionPage, summary="Interventions, most urgent first", dependencies=[Depends(STAFF)])
def list_interventions(
    db: DbDep,
    status: Literal["open", "all"] = "open",
    kind: KindFilter = Query("all", description="tasks: human tasks and programs"),  # type: ignore[valid-type]
    limit: int = Query(50, ge=1, le=200),
    offset: Offset = 0,
) -> InterventionPage:
    now = utcnow()
    filters = queries.QueueFilters(scope="all", status=status, kind=kind)
    items, total = queries.list_queue(db, filters, user_id=None, role=None, now=now, limit=limit, offset=offset)
    return InterventionPage(items=[row_read(i.intervention, i.tutor_name, now) for i in items], total=total,
                            limit=limit, offset=offset)


@router.get("/interventions/effectiveness", response_model=EffectivenessReportRead,
            summary="PRD §4.4 effectiveness over cases recommended in the last `days` days, overall, per risk "
                    "level and per intervention type x risk level, with the targets", dependencies=[Depends(STAFF)])
def get_effectiveness(db: DbDep, settings: SettingsDep, as_of: Instant | None = None,
                      days: int = Query(90, ge=1, le=730, description="Period length in days")
                      ) -> EffectivenessReportRead:
    now = as_of.astimezone(UTC) if as_of else utcnow()
    # The impact window and threshold live in the active rules (their `effectiveness` section) and nowhere else.
    window = effectiveness_service.settings_from_rules(active_intervention_rules(settings.rules_dir))
    report = effectiveness_service.effectiveness(db, now=now, days=days, **window)
    return EffectivenessReportRead.model_validate(report)


@router.get("/kpis", response_model=KpiReport, tags=["dashboard"],
            summary="System KPIs over the last `days` days, each with its change vs. the period before", dependencies=[Depends(STAFF)])
def get_kpis(db: DbDep, as_of: Instant | None = None,
             days: int = Query(30, ge=7, le=90, description="Period length in days")) -> KpiReport:
    # Prediction days and KPI windows are UTC days; a caller's offset must not shift them.
    now = as_of.astimezone(UTC) if as_of else utcnow()
    return KpiReport(as_of=now, days=days, kpis=dashboard_service.kpis(db, now=now, days=days))
