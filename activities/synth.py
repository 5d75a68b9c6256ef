"""The live synthetic feed: one tick generates the interval's sessions and pushes them through ingestion."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from core.config import Settings
from core.db import session_scope
from core.temporal import group_by_tutor, notify_sessions_ingested
from core.types import utcnow
from domain.events.service import ingest_events
from domain.feedback.service import ingest_feedback
from domain.sessions.service import ingest_sessions
from domain.tutors.models import Tutor
from synth.live import ScenarioChanged, SynthWorldMissing, generate_tick, latest_world
from synth.responses import apply_responses
from synth.store import insert_missing, upsert_truth
from workflows.inputs import SynthTickInput, SynthTickResult


@dataclass
class SynthActivities:
    engine: Engine
    settings: Settings
    client: Client

    def _tick(self) -> tuple[SynthTickResult, dict[str, list[str]], list[str]]:
        end = utcnow().replace(microsecond=0)
        with session_scope(self.engine) as db:
            world = latest_world(db)
            # A tick covers everything since the last one, so a stopped feed resumes without gaps. The catch-up is
            # capped (a week) so one tick after a long pause stays a bounded amount of work.
            start = max(world.last_tick_at or end - timedelta(seconds=self.settings.synth_tick_seconds), end - timedelta(days=7))
        batch = generate_tick(self.engine, tick_start=start, tick_end=end)
        with session_scope(self.engine) as db:
            # Tutors hired in the simulation exist before their first session arrives; ids make both idempotent.
            insert_missing(db, Tutor, "tutor_id", batch.tutors)
            upsert_truth(db, batch.truth_tutors, batch.truth_transitions)
            created = ingest_sessions(db, batch.sessions, many=True) if batch.sessions else []
            if batch.feedback:
                ingest_feedback(db, batch.feedback, many=True)
            if batch.events:
                ingest_events(db, batch.events, many=True)
            # Simulated tutors opening / answering their in-app messages, through the service the tutor API uses.
            answered = apply_responses(db, batch.responses)
            latest_world(db).last_tick_at = end
        new = {r.id for r in created if r.status == "created"}
        by_tutor = group_by_tutor((s.tutor_id, s.session_id) for s in batch.sessions if s.session_id in new)
        return (SynthTickResult(sessions=len(new), feedback=len(batch.feedback), events=len(batch.events)), by_tutor,
                answered)

    @activity.defn
    async def run_synth_tick(self, _inp: SynthTickInput) -> SynthTickResult:
        try:
            result, by_tutor, answered = await asyncio.to_thread(self._tick)
        except (SynthWorldMissing, ScenarioChanged) as exc:
            raise ApplicationError(str(exc), non_retryable=True) from None
        # Before the sessions' signals, whose failure retries the activity: a retry no longer sees these answers
        # as new (they are stored), so this is their one chance, as after an answer through the tutor API.
        for intervention_id in answered:
            try:
                await self.client.get_workflow_handle(intervention_id).signal("tutor_responded")
            except Exception:  # noqa: BLE001 - the answer is stored; a closed case simply has nothing left to track
                pass
        await notify_sessions_ingested(self.client, by_tutor, task_queue=self.settings.temporal_task_queue)
        return result
