"""A ceiling for the churn model's figures: the probabilities a predictor would give if it knew every tutor's
true daily leaving hazard, today and on every future day (the simulation's latent engagement and state),
but not the coin flips.

Why this is a ceiling. The simulation decides each day whether a tutor leaves with probability
h_d = resignation(e_d) + fade(state_d, e_d) (synth/agents.py ``_leave``). Given the whole hazard path, the
chance of churning within H days of an as-of instant is 1 - prod(1 - h_k) over the H leaving decisions
that fall in the window. That is E[label | hazard path]; no model that sees less (the product's data is a
noisy consequence of the same path) can have a lower expected Brier score, so Brier, Brier skill and ECE
figures the oracle misses are out of reach for any model on this world. AUC and precision@10% get no such
guarantee, but the oracle's figures show how much ranking the coin flips leave possible.

Bench-only: reads synth internals (it rebuilds the agents from the world's seed); nothing in the product may.
"""
from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlmodel import Session

from synth.agents import DE, Agents
from synth.models import SynthWorld
from synth.scenario import load_scenario
from synth.world import build_world


def hazard_grid(db: Session, until: np.datetime64) -> tuple[dict[str, int], np.ndarray, np.datetime64]:
    """(tutor id -> slot, hazard (days, slots): P(leave on simulated day d) for the days before ``until``,
    epoch day). A backfill delivers no intervention, so no effect multiplier applies."""
    w = db.execute(select(SynthWorld).order_by(SynthWorld.world_id.desc())).scalars().first()
    world = build_world(w.seed, w.n_tutors, w.epoch, load_scenario(w.scenario_path or None))
    epoch = np.datetime64(world.epoch.date(), "D")
    days = int((until - epoch).astype(int))
    agents = Agents(world)
    agents.advance_to(days)
    ch, lat = agents.sc.churn, agents.sc.latent
    out = np.zeros((days, world.capacity))
    for d in range(days):
        e, state, _ = agents.history[d]
        resign = ch.resignation_per_month / 30 * np.exp(ch.resignation_sensitivity * (lat.reference - e))
        fade = np.where((state == DE) & (e < ch.fade_threshold), ch.fade_hazard_per_day, 0.0)
        out[d] = np.minimum(resign + fade, 1.0)
    return {world.tutor_id(i): i for i in range(world.capacity)}, out, epoch


def oracle_probabilities(db: Session, tutor_ids: np.ndarray, days: np.ndarray, horizons: tuple[int, ...]) -> np.ndarray:
    """(rows, horizons) for feature rows (tutor, as-of day D 00:00 UTC). A churn at instant D + j days comes
    from the leaving decision of simulated day D + j - 1, so the window [D, D + H) holds decisions D-1 .. D+H-2."""
    days = days.astype("datetime64[D]")
    ids, hz, epoch = hazard_grid(db, days.max() + max(horizons))
    d0 = (days - epoch).astype(np.int64)
    slots = np.array([ids[t] for t in tutor_ids])
    cum = np.vstack([np.zeros((1, hz.shape[1])), np.cumsum(np.log1p(-np.clip(hz, 0, 1 - 1e-12)), axis=0)])
    out = np.zeros((len(tutor_ids), len(horizons)))
    lo = np.clip(d0 - 1, 0, len(hz))
    for j, h in enumerate(horizons):
        hi = np.clip(d0 - 1 + h, 0, len(hz))
        out[:, j] = -np.expm1(cum[hi, slots] - cum[lo, slots])  # cum[k] sums the days before k
    return out


def latent_states(db: Session, tutor_ids: np.ndarray, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(state, engagement) of each row's tutor on the day before its as-of (what its data shows last)."""
    w = db.execute(select(SynthWorld).order_by(SynthWorld.world_id.desc())).scalars().first()
    world = build_world(w.seed, w.n_tutors, w.epoch, load_scenario(w.scenario_path or None))
    epoch = np.datetime64(world.epoch.date(), "D")
    agents = Agents(world)
    d = (days.astype("datetime64[D]") - epoch).astype(np.int64) - 1
    agents.advance_to(int(d.max()) + 1)
    ids = {world.tutor_id(i): i for i in range(world.capacity)}
    slots = np.array([ids[t] for t in tutor_ids])
    e = np.stack([h[0] for h in agents.history])[np.maximum(d, 0), slots]
    s = np.stack([h[1] for h in agents.history])[np.maximum(d, 0), slots]
    return s, e


def state_oracle(state: np.ndarray, engagement: np.ndarray, y: np.ndarray, bins: int = 10) -> np.ndarray:
    """A predictor that knows only today's latent state and engagement decile: the churn rate of its
    (state, decile) cell, measured on the very rows it scores. In-sample on purpose (a generous ceiling for
    what today's state can tell; with 40 cells it barely overfits)."""
    edges = np.quantile(engagement, np.linspace(0, 1, bins + 1)[1:-1])
    cell = state * bins + np.searchsorted(edges, engagement)
    rate = np.zeros(cell.max() + 1)
    for c in np.unique(cell):
        rate[c] = y[cell == c].mean()
    return rate[cell]
