"""Ingestion endpoints: one object or a batch; all-or-nothing; idempotent on the record's own id."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Body, Depends, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.deps import EngineDep, SettingsDep, TemporalDep
from api.policy import INGEST
from core.db import session_scope
from core.errors import InputError, field_error
from core.temporal import group_by_tutor, try_notify
from domain.events.schemas import TutorEventIn
from domain.events.service import ingest_events
from domain.feedback.models import FeedbackIn
from domain.feedback.service import ingest_feedback
from domain.sessions.models import IngestResult, SessionIn
from domain.sessions.service import ingest_sessions

router = APIRouter(tags=["ingestion"])
MAX_BATCH = 5000


class BatchResult(BaseModel):
    results: list[IngestResult]
    created: int
    existing: int
    evaluation: str  # signalled | pending (the sweep schedule picks pending ones up)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Documents 'one object or a list of them' without letting a Union mangle error locations."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    schema = {"anyOf": [ref, {"type": "array", "items": ref, "maxItems": MAX_BATCH}]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


BODY_MODELS = (SessionIn, FeedbackIn, TutorEventIn)


def _parse(payload: Any, model: type[BaseModel]) -> tuple[list[BaseModel], bool]:
    many = isinstance(payload, list)
    if many and len(payload) > MAX_BATCH:
        raise InputError([field_error(["body"], f"at most {MAX_BATCH} items per request", "value_error.too_many")])
    if many and not payload:
        raise InputError([field_error(["body"], "empty batch", "value_error.empty")])
    try:
        items = TypeAdapter(list[model]).validate_python(payload) if many else [model.model_validate(payload)]
    except ValidationError as exc:
        raise InputError([
            field_error(["body", *e["loc"]], e["msg"], e["type"]) for e in exc.errors(include_input=False)
        ]) from None
    return items, many


async def _ingest(
    payload: Any,
    model: type[BaseModel],
    store: Callable[..., list[IngestResult]],
    to_signal: Callable[[Any, Sequence[BaseModel], list[IngestResult]], dict[str, list[str]]],
    *,
    engine, client, settings, response: Response,  # noqa: ANN001
) -> IngestResult | BatchResult:
    items, many = _parse(payload, model)

    def write() -> tuple[list[IngestResult], dict[str, list[str]]]:
        with session_scope(engine) as db:
            results = store(db, items, many=many)
            return results, to_signal(db, items, results)

    results, by_tutor = await run_in_threadpool(write)
    # Signalled only after the commit: a workflow must never evaluate a session that is not yet visible.
    signalled = await try_notify(client, by_tutor, task_queue=settings.temporal_task_queue)
    created = sum(r.status == "created" for r in results)
    response.status_code = 201 if created else 200
    if not many:
        return results[0]
    return BatchResult(results=results, created=created, existing=len(results) - created,
                       evaluation="signalled" if signalled or not by_tutor else "pending")


def _created_sessions(_db, items: Sequence[SessionIn], results: list[IngestResult]) -> dict[str, list[str]]:  # noqa: ANN001
    created = {r.id for r in results if r.status == "created"}
    return group_by_tutor((s.tutor_id, s.session_id) for s in items if s.session_id in created)


def _feedback_sessions(_db, items: Sequence[FeedbackIn], results: list[IngestResult]) -> dict[str, list[str]]:  # noqa: ANN001
    created = {r.id for r in results if r.status == "created"}
    return group_by_tutor((f.tutor_id, f.session_id) for f in items if f.feedback_id in created)


def _event_tutors(_db, items: Sequence[TutorEventIn], results: list[IngestResult]) -> dict[str, list[str]]:  # noqa: ANN001
    """Logins, replies, trainings and availability feed engagement: their tutors are re-evaluated too (no
    session ids to mark; the daily rollup also covers them if a signal is lost)."""
    created = {r.id for r in results if r.status == "created"}
    return {e.tutor_id: [] for e in items if e.event_id in created}


@router.post(
    "/sessions", response_model=IngestResult | BatchResult, status_code=201,
    openapi_extra=_body_schema(SessionIn), summary="Ingest one session or a batch (idempotent on session_id)",
    responses={200: {"description": "Already stored: the existing record's id"}, 422: {"description": "Invalid field"}},
    dependencies=[Depends(INGEST)],
)
async def post_sessions(response: Response, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                        payload: Any = Body(...)):  # noqa: B008
    return await _ingest(payload, SessionIn, ingest_sessions, _created_sessions,
                         engine=engine, client=client, settings=settings, response=response)


@router.post(
    "/feedback", response_model=IngestResult | BatchResult, status_code=201,
    openapi_extra=_body_schema(FeedbackIn), summary="Ingest student feedback (idempotent on feedback_id)",
    responses={200: {"description": "Already stored"}, 422: {"description": "Invalid field"}},
    dependencies=[Depends(INGEST)],
)
async def post_feedback(response: Response, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                        payload: Any = Body(...)):  # noqa: B008
    return await _ingest(payload, FeedbackIn, ingest_feedback, _feedback_sessions,
                         engine=engine, client=client, settings=settings, response=response)


@router.post(
    "/events", response_model=IngestResult | BatchResult, status_code=201,
    openapi_extra=_body_schema(TutorEventIn), summary="Ingest tutor behaviour events (idempotent on event_id)",
    responses={200: {"description": "Already stored"}, 422: {"description": "Invalid field"}},
    dependencies=[Depends(INGEST)],
)
async def post_events(response: Response, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                      payload: Any = Body(...)):  # noqa: B008
    # Events re-evaluate their tutors too (the lifecycle coalesces bursts); a lost signal waits for the daily rollup.
    return await _ingest(payload, TutorEventIn, ingest_events, _event_tutors,
                         engine=engine, client=client, settings=settings, response=response)
