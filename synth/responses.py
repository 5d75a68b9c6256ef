"""Simulated tutors opening, and sometimes answering, the in-app messages automated interventions send them.

Without this no simulated tutor ever reacts, and the demo shows 0% acceptance for automated interventions.

Each message's fate is drawn once from a stream seeded by (world seed, message id): whether the tutor opens
it, after how long, whether they answer, after how long and what. The chances and delays follow the tutor's
latent engagement on the day the message went out (scenario ``notifications``). A tutor who has left by the
time they would have opened or answered does neither. The same seed and the same messages give the same
reactions, however the live feed's ticks happen to cut the time.

A live tick records every open or answer whose time has come (before the tick's end) and is not on the
message yet — usually exactly those falling inside the tick, but also one due earlier whose message was
committed after the previous tick read the outbox, which "inside the tick only" would lose for good. Writing
goes through ``record_response`` (what the tutor's API calls), which stamps only the first time, so a re-run
tick changes nothing. The reactions are simulated behaviour the product observes, not ground truth: the
engagement behind them stays in the simulation.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from domain.interventions.models import OutboxMessage
from domain.interventions.service import record_response
from synth.agents import Agents

_STREAM = 0x0BE7  # keeps these draws apart from any other stream seeded with the same numbers
_HOUR = 3600.0
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Pending:
    """A tutor-facing in-app message that may still be opened or answered."""

    message_id: str
    intervention_id: str
    tutor_id: str
    sent_at: datetime
    opened: bool
    answered: bool


@dataclass(frozen=True)
class Reaction:
    """What a tutor does with one message, ever: times are None for what they never do."""

    message_id: str
    opened_at: datetime | None
    answered_at: datetime | None
    answer: str | None


@dataclass(frozen=True)
class Response:
    """One open (answer None) or answer to record, at simulated time ``at``."""

    message_id: str
    intervention_id: str
    at: datetime
    answer: str | None


def pending_messages(db: Session, *, since: datetime, until: datetime) -> list[Pending]:
    """Tutor-facing in-app messages sent in [since, until) that are not both opened and answered yet.

    Staff notices (a recipient role) and emails are not the tutor's notification, so they never qualify.
    """
    stmt = (select(OutboxMessage.message_id, OutboxMessage.intervention_id, OutboxMessage.tutor_id,
                   OutboxMessage.sent_at, OutboxMessage.opened_at, OutboxMessage.responded_at)
            .where(OutboxMessage.channel == "in_app", OutboxMessage.recipient_role.is_(None),
                   OutboxMessage.sent_at.is_not(None), OutboxMessage.sent_at >= since, OutboxMessage.sent_at < until,
                   (OutboxMessage.opened_at.is_(None) | OutboxMessage.responded_at.is_(None)))
            .order_by(OutboxMessage.sent_at, OutboxMessage.message_id))
    return [Pending(m, i, t, s, o is not None, r is not None) for m, i, t, s, o, r in db.execute(stmt)]


def _lerp(engaged: float, disengaged: float, dis: float) -> float:
    return engaged + (disengaged - engaged) * dis


def react(agents: Agents, slot: int, message_id: str, sent_at: datetime) -> Reaction:
    """The tutor in ``slot``'s reaction to a message sent at ``sent_at``.

    ``agents`` must know every intervention delivered before the UTC midnight ending the last day asked
    about (see ``reader_cutoff``): a day's engagement depends on nothing later, so the answer never changes.
    """
    nt = agents.sc.notifications
    ref = agents.sc.latent.reference
    # Drawn in a fixed order whatever the outcome, so one parameter's value never shifts another draw.
    u_open, u_answer, u_open_delay, u_answer_delay, u_text = np.random.default_rng(
        [agents.world.seed, zlib.crc32(message_id.encode()), _STREAM]).random(5)
    none = Reaction(message_id, None, None, None)
    d = (sent_at.date() - agents.world.epoch_day).days
    if d < 0:
        return none  # before the world began: nobody here to read it
    view = agents.view(d)
    if not view.alive[slot]:
        return none
    e, dis = float(view.engagement[slot]), float(view.disengagement[slot])
    stretch = math.exp(nt.delay_slope * (ref - e))
    give_up = sent_at + timedelta(days=nt.give_up_days)

    def _delay(dist, u: float) -> timedelta:  # noqa: ANN001 - a LogNormal
        # One uniform per delay (through the normal quantile), so each delay costs exactly one draw.
        z = _NORMAL.inv_cdf(min(max(u, 1e-9), 1 - 1e-9))
        return timedelta(seconds=max(60.0, dist.median * stretch * math.exp(dist.log_sd * z) * _HOUR))

    def _present(at: datetime) -> bool:
        day = (at.date() - agents.world.epoch_day).days
        if at >= give_up:
            return False
        # Stepped through the day before, so whether they left by then is known however far the agents had got.
        # (A day past the agents' cutoff can only be provisional; such a time is not due in this tick anyway.)
        agents.advance_to(day)
        return int(agents.churn_day[slot]) > day

    if u_open >= _lerp(nt.open_p_engaged, nt.open_p_disengaged, dis):
        return none
    opened = sent_at + _delay(nt.open_delay_hours, u_open_delay)
    if not _present(opened):
        return none
    if u_answer >= _lerp(nt.answer_p_engaged, nt.answer_p_disengaged, dis):
        return Reaction(message_id, opened, None, None)
    answered = opened + _delay(nt.answer_delay_hours, u_answer_delay)
    if not _present(answered):
        return Reaction(message_id, opened, None, None)
    return Reaction(message_id, opened, answered, nt.answers[min(int(u_text * len(nt.answers)), len(nt.answers) - 1)])


def reader_cutoff(tick_end: datetime) -> datetime:
    """The UTC midnight starting the last day a message sent before ``tick_end`` can carry; the agents that
    judge the tick's messages must know every intervention delivered before it."""
    last = tick_end - timedelta(microseconds=1)
    return last.replace(hour=0, minute=0, second=0, microsecond=0)


def responses_due(agents: Agents, pending: Iterable[Pending], tick_end: datetime) -> list[Response]:
    """Opens and answers whose time has come by ``tick_end`` and that the message does not carry yet."""
    # Every id the world can ever hand out, not just those hired so far: how far the agents happen to have
    # been stepped must not decide whether a message is looked at (react() checks the tutor was there).
    slots = {agents.world.tutor_id(i): i for i in range(agents.world.capacity)}
    out: list[Response] = []
    for m in pending:
        slot = slots.get(m.tutor_id)
        if slot is None:
            continue  # not one of the simulated tutors (a real or hand-made one): they act for themselves
        r = react(agents, slot, m.message_id, m.sent_at)
        if r.opened_at is not None and r.opened_at < tick_end and not m.opened:
            out.append(Response(m.message_id, m.intervention_id, r.opened_at, None))
        if r.answered_at is not None and r.answered_at < tick_end and not m.answered:
            out.append(Response(m.message_id, m.intervention_id, r.answered_at, r.answer))
    return sorted(out, key=lambda x: (x.at, x.message_id))


def apply_responses(db: Session, responses: Sequence[Response]) -> list[str]:
    """Records each through the tutor API's service; returns the cases newly answered (to signal), in order.

    A message someone else already answered (e.g. through the API) keeps that answer: ``record_response``
    stamps the first time only, and it is not reported again.
    """
    answered: list[str] = []
    for r in responses:
        message = db.get(OutboxMessage, r.message_id)
        if message is None:
            continue
        fresh = r.answer is not None and message.responded_at is None
        record_response(db, r.message_id, opened=True, response=r.answer, now=r.at)
        if fresh and r.intervention_id not in answered:
            answered.append(r.intervention_id)
    db.flush()
    return answered
