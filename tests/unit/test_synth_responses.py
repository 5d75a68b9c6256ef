"""Simulated tutors open and answer their in-app notifications: deterministic for a seed, at the scenario's
rates, only tutor-facing messages already sent, idempotent when a tick runs again, and the tick activity signals
the answered cases' workflows."""
from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

import core.db
import domain.registry  # noqa: F401  (registers every table)
import synth.truth  # noqa: F401  (the ground-truth tables)
from core.db import session_scope
from domain.interventions.models import Intervention, OutboxMessage
from synth.agents import Agents
from synth.backfill import backfill
from synth.live import generate_tick
from synth.responses import Pending, apply_responses, react, responses_due
from synth.scenario import DEFAULT_PATH, load_scenario, parse_scenario
from synth.world import build_world
from tests.factories import intervention_row

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


# --- the draws, without a database ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def agents() -> Agents:
    return Agents(build_world(7, 250, END - timedelta(days=60), load_scenario()))


def _messages(agents: Agents, n: int, *, seed: int = 1) -> list[tuple[int, str, datetime]]:
    """n messages to tutors who are there on the day, spread over days 10..50 of the world."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        d, slot = int(rng.integers(10, 50)), int(rng.integers(0, agents.world.capacity))
        if agents.view(d).alive[slot]:
            at = agents.day_start(d) + timedelta(seconds=int(rng.integers(0, 86400)))
            out.append((slot, f"intervention-{slot}-A1-{len(out)}:message:in_app", at))
    return out


def test_same_seed_same_reactions_other_seed_differs(agents: Agents) -> None:
    msgs = _messages(agents, 300)
    twin = Agents(build_world(7, 250, END - timedelta(days=60), load_scenario()))
    other = Agents(build_world(8, 250, END - timedelta(days=60), load_scenario()))
    first = [react(agents, *m) for m in msgs]
    assert first == [react(twin, *m) for m in msgs] == [react(agents, *m) for m in msgs]
    assert any(r.opened_at for r in first) and any(r.answered_at for r in first)
    assert first != [react(other, *m) for m in msgs]


def test_rates_and_delays_follow_the_scenario_and_engagement(agents: Agents) -> None:
    nt, msgs = agents.sc.notifications, _messages(agents, 4000)
    reactions = [react(agents, *m) for m in msgs]
    dis = np.array([float(agents.view((at.date() - agents.world.epoch_day).days).disengagement[slot])
                    for slot, _, at in msgs])
    opened = np.array([r.opened_at is not None for r in reactions])
    answered = np.array([r.answered_at is not None for r in reactions])
    expected_open = nt.open_p_engaged + (nt.open_p_disengaged - nt.open_p_engaged) * dis
    # Leaving before opening (churn) or the give-up window only take a little off the drawn rate.
    assert expected_open.mean() - 0.04 < opened.mean() <= expected_open.mean() + 0.02
    engaged, fading = dis == 0, dis > 0.5
    assert engaged.sum() > 500 and fading.sum() > 100
    assert abs(opened[engaged].mean() - nt.open_p_engaged) < 0.03
    assert opened[fading].mean() < 0.5
    expected_answer = nt.answer_p_engaged + (nt.answer_p_disengaged - nt.answer_p_engaged) * dis
    assert abs(answered[opened].mean() - expected_answer[opened].mean()) < 0.04
    # Engaged tutors open within hours; fading ones, when they do at all, days later.
    delay = {k: [(r.opened_at - at) / H for r, (_, _, at), keep in zip(reactions, msgs, mask, strict=True)
                 if keep and r.opened_at] for k, mask in (("engaged", engaged), ("fading", fading))}
    assert statistics.median(delay["engaged"]) < nt.open_delay_hours.median
    assert statistics.median(delay["fading"]) > 3 * nt.open_delay_hours.median
    assert all((r.answered_at or r.opened_at or END) >= (r.opened_at or at) for r, (_, _, at) in zip(reactions, msgs, strict=True))
    assert {r.answer for r in reactions if r.answer} <= set(nt.answers)


def test_changing_the_parameters_changes_the_rates() -> None:
    text = DEFAULT_PATH.read_text()
    for key, value in (("open_p_engaged: 0.90", "open_p_engaged: 0.5"), ("open_p_disengaged: 0.15", "open_p_disengaged: 0.5"),
                       ("answer_p_engaged: 0.40", "answer_p_engaged: 1.0"),
                       ("answer_p_disengaged: 0.05", "answer_p_disengaged: 1.0")):
        assert key in text
        text = text.replace(key, value)
    loaded = parse_scenario(text, "flat.yaml")
    a = Agents(build_world(7, 60, END - timedelta(days=60), loaded))
    reactions = [react(a, *m) for m in _messages(a, 2000)]
    opened = sum(r.opened_at is not None for r in reactions) / len(reactions)
    assert 0.45 < opened < 0.53
    assert sum(r.answered_at is not None for r in reactions) >= 0.95 * sum(r.opened_at is not None for r in reactions)


def test_invalid_parameters_name_the_field() -> None:
    from rules.loader import RulesError

    with pytest.raises(RulesError, match="open_p_engaged"):
        parse_scenario(DEFAULT_PATH.read_text().replace("open_p_engaged: 0.90", "open_p_engaged: 1.5"), "bad.yaml")
    with pytest.raises(RulesError, match="answers"):
        parse_scenario(DEFAULT_PATH.read_text().split("  answers:")[0] + "  answers: []\n", "bad.yaml")


def test_tutors_outside_the_world_and_messages_already_stamped_are_left_alone(agents: Agents) -> None:
    (slot, mid, at), *_ = [m for m in _messages(agents, 200) if react(agents, *m).answered_at]
    r = react(agents, slot, mid, at)
    tid = agents.world.tutor_id(slot)
    far = r.answered_at + H
    assert [x.answer is None for x in responses_due(agents, [Pending(mid, "iv", tid, at, False, False)], far)] == [True, False]
    assert [x.answer for x in responses_due(agents, [Pending(mid, "iv", tid, at, True, False)], far)] == [r.answer]
    assert responses_due(agents, [Pending(mid, "iv", tid, at, True, True)], far) == []
    assert responses_due(agents, [Pending(mid, "iv", "tutor_hand_made", at, False, False)], far) == []
    # Before their time has come, nothing.
    assert responses_due(agents, [Pending(mid, "iv", tid, at, False, False)], r.opened_at) == []


# --- live ticks against a database -----------------------------------------------------------------------------
def _world_db(tmp_path, name: str):  # noqa: ANN001, ANN202
    engine = core.db.get_engine("sqlite:///" + str(tmp_path / f"{name}.db"))
    SQLModel.metadata.create_all(engine)
    report = backfill(engine, days=3, seed=5, n_tutors=20, sessions_per_day=300, end=END, progress=lambda _: None)
    with session_scope(engine) as db:
        for k, tutor in enumerate(report.tutor_ids[:20]):
            iid, sent = f"intervention-{tutor}-A1-{k}", END + (k % 10) * 3 * H
            db.add(intervention_row(iid, tutor, "A1_coaching_tips", recommended=sent, kind="automated",
                                    status="in_progress"))
            db.flush()
            db.add(_msg(iid, tutor, "in_app", sent))
            db.add(_msg(iid, tutor, "email", sent))
            db.add(_msg(iid, tutor, "in_app", sent, step="reminder", recipient_role="people_ops"))
        late = report.tutor_ids[0]
        db.add(intervention_row("intervention-late", late, "A1_coaching_tips", recommended=END + 10 * 24 * H,
                                kind="automated", status="in_progress"))
        db.flush()
        db.add(_msg("intervention-late", late, "in_app", END + 10 * 24 * H))
    return engine


def _msg(iid: str, tutor: str, channel: str, at: datetime, *, step: str = "message",
         recipient_role: str | None = None) -> OutboxMessage:
    return OutboxMessage(message_id=f"{iid}:{step}:{channel}", intervention_id=iid, tutor_id=tutor, channel=channel,
                         recipient_role=recipient_role, subject="s", body="b", status="sent", sent_at=at, created_at=at)


def _run_tick(engine, start: datetime, end: datetime) -> list[str]:  # noqa: ANN001
    """The tick activity's response part: generate, then record through the service in one transaction."""
    batch = generate_tick(engine, tick_start=start, tick_end=end)
    with session_scope(engine) as db:
        return apply_responses(db, batch.responses)


def _stamps(engine) -> dict[str, tuple]:  # noqa: ANN001
    with session_scope(engine) as db:
        rows = db.execute(select(OutboxMessage)).scalars().all()
        cases = {r.intervention_id: (r.opened_at, r.responded_at) for r in db.execute(select(Intervention)).scalars()}
        return {m.message_id: (m.opened_at, m.responded_at, m.response, cases[m.intervention_id]) for m in rows}


def test_ticks_record_opens_and_answers_once_whatever_the_tick_cut(tmp_path) -> None:  # noqa: ANN001
    a, b = _world_db(tmp_path, "a"), _world_db(tmp_path, "b")
    # World a: one long tick; world b (same seed, same messages): 6-hour ticks, each run twice.
    answered_a = _run_tick(a, END, END + 5 * 24 * H)
    answered_b, t = [], END
    while t < END + 5 * 24 * H:
        answered_b += _run_tick(b, t, t + 6 * H)
        assert _run_tick(b, t, t + 6 * H) == []  # a re-run tick answers nothing new
        t += 6 * H
    stamps = _stamps(a)
    assert stamps == _stamps(b) and sorted(answered_a) == sorted(answered_b)
    tutor_facing = {k: v for k, v in stamps.items() if k.endswith(":message:in_app") and "late" not in k}
    opened = [k for k, v in tutor_facing.items() if v[0]]
    assert len(opened) >= 8, "most of 20 messages are opened within 5 days"
    assert all(v[0] >= END and v[3][0] == v[0] for v in tutor_facing.values() if v[0])  # the case carries it too
    answered = {k.split(":")[0] for k, v in tutor_facing.items() if v[1]}
    assert answered == set(answered_a)
    assert all(v[2] and v[1] >= v[0] and v[3][1] == v[1] for k, v in tutor_facing.items() if v[1])
    # Staff notices, emails and a message not yet sent by the tick's end are never touched.
    untouched = [v for k, v in stamps.items() if not k.endswith(":message:in_app") or "late" in k]
    assert untouched and all(v[:3] == (None, None, None) for v in untouched)


def test_only_what_falls_before_the_tick_end_is_recorded(tmp_path) -> None:  # noqa: ANN001
    engine = _world_db(tmp_path, "c")
    _run_tick(engine, END, END + 2 * H)
    early = _stamps(engine)
    assert all((v[0] is None or v[0] < END + 2 * H) and (v[1] is None or v[1] < END + 2 * H) for v in early.values())
    _run_tick(engine, END + 2 * H, END + 5 * 24 * H)
    late = _stamps(engine)
    assert all(late[k][0] == v[0] for k, v in early.items() if v[0])  # the first stamp stands


# --- the tick activity ---------------------------------------------------------------------------------------------
@dataclass
class _Handle:
    client: _FakeClient
    workflow_id: str

    async def signal(self, name: str) -> None:
        if self.workflow_id.endswith("-0"):
            raise RuntimeError("workflow closed")  # best effort: one failing signal does not stop the others
        self.client.signals.append((self.workflow_id, name))


@dataclass
class _FakeClient:
    signals: list = field(default_factory=list)
    started: list = field(default_factory=list)

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self, workflow_id)

    async def start_workflow(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self.started.append(kwargs["id"])


def test_the_tick_activity_records_answers_and_signals_their_cases(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import activities.synth as mod

    engine = _world_db(tmp_path, "d")
    monkeypatch.setattr(mod, "utcnow", lambda: END + 4 * 24 * H)
    with session_scope(engine) as db:
        from synth.live import latest_world

        latest_world(db).last_tick_at = END
    client = _FakeClient()
    acts = mod.SynthActivities(engine=engine, settings=SimpleNamespace(synth_tick_seconds=15, temporal_task_queue="q"),
                               client=client)
    asyncio.run(acts.run_synth_tick(None))
    answered = {k.split(":")[0] for k, v in _stamps(engine).items() if v[1]}
    assert answered and {(iid, "tutor_responded") for iid in answered if not iid.endswith("-0")} == set(client.signals)
    assert client.started, "sessions still signal their tutors"
    client.signals.clear()
    monkeypatch.setattr(mod, "utcnow", lambda: END + 4 * 24 * H + timedelta(seconds=15))
    asyncio.run(acts.run_synth_tick(None))
    assert client.signals == []  # already answered: nothing new to tell the workflows
