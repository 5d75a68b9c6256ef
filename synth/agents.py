"""Tutors as agents, stepped one simulated UTC day at a time.

Each tutor carries a latent engagement e_t and a discrete state (thriving, steady, declining, recovering).
Every day: hires fill the gap to the target headcount; states move with daily hazards that depend on the
tutor's archetype (a tendency, not a fate), their engagement and tenure, and any intervention that reached
them; e_t reverts towards its state's target with noise; then the tutor may leave. Leaving is either an
abrupt resignation (1-2%/month, more likely when disengaged, so it comes with little warning) or the end of
a fade (a declining tutor whose engagement has sunk below a threshold). A fade's cause is the PRD definition
whose condition held first in the run-up, judged on the tutor's expected behaviour.

Determinism: day d's draws come from a stream seeded by (seed, d) with one value per tutor *slot* (the whole
capacity), so neither hires nor interventions shift anyone else's draws, and stepping to day D gives the
same history whatever was asked before. The same seed, scenario and interventions give the same agents.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from synth.truth import ChurnCause
from synth.world import ARCHETYPES, STATES, World, midnight

TH, ST, DE, RE = range(4)
NEVER = 1 << 30
_NEW_TUTOR_DAYS = 60


@dataclass(frozen=True)
class Delivered:
    """An intervention that reached a tutor at ``at`` (business time); it acts from the next day on."""

    intervention_id: str
    tutor_id: str
    intervention_type: str
    at: datetime


@dataclass(frozen=True)
class Transition:
    tutor: int
    day: int  # the first day in the new state (churn: the first day without the tutor)
    from_state: str
    to_state: str
    reason: str


@dataclass
class DayView:
    """What each tutor slot is like on one day: the inputs of the observable behaviour."""

    alive: np.ndarray
    engagement: np.ndarray
    activity: np.ndarray  # multiplier on the tutor's share of the day's volume
    logins: np.ndarray  # expected logins that day
    disengagement: np.ndarray  # 0 at/above the reference engagement, 1 at the activity floor
    tenure: np.ndarray  # days since onboarding
    effect: np.ndarray  # True while an intervention's effect is running


class Agents:
    def __init__(self, world: World, interventions: Sequence[Delivered] = ()):
        self.world = world
        sc = self.sc = world.scenario.scenario
        cap, n = world.capacity, world.n_tutors
        self.onboard_day = np.full(cap, NEVER)
        self.onboard_day[:n] = -world.tenure_at_epoch[:n].astype(int)
        self.churn_day = np.full(cap, NEVER)
        self.causes: dict[int, ChurnCause] = {}
        self.n_known = n
        self.state = world.initial_state.copy()
        ob = sc.observables
        # Tutors fade in different ways: most stop logging in first (PRD: engagement decline), some keep
        # logging in while their sessions dry up (reduced activity) or simply go silent (inactivity).
        v = np.random.default_rng([world.seed, 0xA1]).random(cap)
        self._login_exp = np.where(v < ob.activity_led_share, ob.activity_led_login_exponent, ob.login_exponent)
        lat = sc.latent
        targets = np.array([lat.targets[s] for s in STATES])
        self._targets = targets
        u = np.random.default_rng([world.seed, 0xE0]).random(cap)
        # A tutor declining at the epoch is somewhere along the slide, not at its start.
        self.e = np.where(self.state == DE, sc.churn.fade_threshold + 0.05 + (lat.reference - sc.churn.fade_threshold) * u,
                          targets[self.state] + world.target_offset).clip(0.02, 0.99)
        self._hz = self._hazards()
        self._effects = self._compile(interventions)
        start_logins = self._logins(np.where(self.state == DE, lat.reference, self.e))
        self._login_hist = [start_logins] * sc.churn.login_drop_days
        self._low_run = np.zeros(cap, dtype=int)
        self._held = {c: np.full(cap, NEVER) for c in (ChurnCause.engagement_decline, ChurnCause.reduced_activity)}
        self.transitions: list[Transition] = []
        self.history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # per day: e, state, effect
        self.interventions = tuple(interventions)

    # --- set-up -------------------------------------------------------------------------------------------
    def _hazards(self) -> dict[str, np.ndarray]:
        """Per-slot monthly transition hazards, converted to daily, from each tutor's archetype."""
        out: dict[str, np.ndarray] = {}
        for name in ("thriving_to_steady", "steady_to_thriving", "to_declining", "declining_to_recovering",
                     "recovering_to_steady", "recovering_to_declining"):
            per_kind = np.array([getattr(self.sc.archetypes[a.value].transitions, name) if a.value in self.sc.archetypes
                                 else 0.0 for a in ARCHETYPES])
            out[name] = per_kind[self.world.archetype] / 30
        return out

    def _compile(self, interventions: Sequence[Delivered]) -> list[tuple[int, int, int, float, float, str]]:
        """(slot, first day, end day, hazard multiplier, engagement boost, type) for effects not ignored."""
        ids = {self.world.tutor_id(i): i for i in range(self.world.capacity)}
        effects = []
        for iv in sorted(interventions, key=lambda x: (x.at, x.intervention_id)):
            eff = self.sc.interventions.get(iv.intervention_type)
            slot = ids.get(iv.tutor_id)
            if eff is None or slot is None:
                continue
            # Whether a tutor ignores an intervention is a property of that tutor and that intervention.
            if np.random.default_rng([self.world.seed, zlib.crc32(iv.intervention_id.encode())]).random() < eff.ignore_probability:
                continue
            first = (iv.at.date() - self.world.epoch_day).days + 1
            effects.append((slot, first, first + round(eff.duration_weeks * 7), eff.hazard_multiplier,
                            eff.engagement_boost, iv.intervention_type))
        return effects

    # --- behaviour as a function of engagement ------------------------------------------------------------
    def _logins(self, e: np.ndarray) -> np.ndarray:
        return self.world.logins_per_day * (np.maximum(e, 0) / self.sc.latent.reference) ** self._login_exp

    def _activity(self, e: np.ndarray, tenure: np.ndarray) -> np.ndarray:
        ob, ref = self.sc.observables, self.sc.latent.reference
        act = ((e - ob.activity_floor) / (ref - ob.activity_floor)).clip(0, ob.activity_cap)
        ramp = (ob.new_ramp_floor + (1 - ob.new_ramp_floor) * tenure / ob.new_ramp_days).clip(0, 1)
        return act * ramp

    def view(self, d: int) -> DayView:
        """Day ``d`` (0 = the epoch's UTC date); steps the agents forward as far as needed."""
        self.advance_to(d + 1)
        e, state, effect = self.history[d]
        alive = (self.onboard_day <= d) & (self.churn_day > d)
        tenure = (d - self.onboard_day).clip(0, None).astype(float)
        ob, ref = self.sc.observables, self.sc.latent.reference
        return DayView(alive=alive, engagement=e, activity=self._activity(e, tenure), logins=self._logins(e),
                       disengagement=((ref - e) / (ref - ob.activity_floor)).clip(0, 1), tenure=tenure, effect=effect)

    # --- stepping -----------------------------------------------------------------------------------------
    def advance_to(self, days: int) -> None:
        while len(self.history) < days:
            self._step(len(self.history))

    def _step(self, d: int) -> None:
        w, sc, lat, ch = self.world, self.sc, self.sc.latent, self.sc.churn
        cap = w.capacity
        rng = np.random.default_rng([w.seed, d, 0xDA7])
        z, u = rng.standard_normal(cap), rng.random((cap, 2))
        alive = (self.onboard_day <= d) & (self.churn_day > d)
        hires = int(rng.poisson(max(0, w.n_tutors - int(alive.sum())) * sc.population.onboarding_fill_rate))
        for i in range(self.n_known, min(cap, self.n_known + hires)):
            self.onboard_day[i], self.state[i] = d, ST
            self.e[i] = self._targets[ST] + w.target_offset[i]
            self.transitions.append(Transition(i, d, "none", STATES[ST], "onboarded"))
        self.n_known = min(cap, self.n_known + hires)
        alive = (self.onboard_day <= d) & (self.churn_day > d)

        mult, boost = np.ones(cap), np.zeros(cap)
        latest: dict[int, str] = {}
        for slot, first, end, m, b, kind in self._effects:
            if first <= d < end:
                mult[slot] *= m
                boost[slot] += b
                latest[slot] = kind
        tenure = d - self.onboard_day
        hz, e, s = self._hz, self.e, self.state
        decline = hz["to_declining"] * np.exp(lat.hazard_sensitivity * (lat.reference - e)) * mult
        decline = decline * np.where(tenure < _NEW_TUTOR_DAYS, lat.new_tutor_decline_factor, 1.0)
        # One uniform per tutor picks at most one move; the order of moves within a state is fixed.
        moves = {TH: ((decline, DE), (hz["thriving_to_steady"], ST)),
                 ST: ((decline, DE), (hz["steady_to_thriving"], TH)),
                 DE: ((hz["declining_to_recovering"] / mult, RE),),
                 RE: ((hz["recovering_to_declining"] * mult, DE), (hz["recovering_to_steady"], ST))}
        new = s.copy()
        for frm, options in moves.items():
            acc = np.zeros(cap)
            for p, to in options:
                lo, acc = acc, acc + p
                new[(s == frm) & alive & (u[:, 0] >= lo) & (u[:, 0] < acc)] = to
        for i in np.flatnonzero(new != s).tolist():
            reason = f"intervention:{latest[i]}" if i in latest and new[i] in (RE, ST, TH) else "drift"
            self.transitions.append(Transition(i, d, STATES[s[i]], STATES[new[i]], reason))
        self.state = new
        target = self._targets[new] + w.target_offset + boost
        self.e = np.where(alive, e + lat.reversion * (target - e) + lat.noise_sd * z, e).clip(0.02, 0.99)
        self.history.append((self.e.astype(np.float32), self.state.copy(), mult < 1))
        self._track_conditions(d, alive, tenure)
        self._leave(d, alive, mult, u[:, 1])

    def _track_conditions(self, d: int, alive: np.ndarray, tenure: np.ndarray) -> None:
        """The first day each fade definition held in the current decline episode (reset once it ends)."""
        ch = self.sc.churn
        logins = self._logins(self.e)
        dropped = logins <= (1 - ch.login_drop) * self._login_hist[0]
        self._login_hist = [*self._login_hist[1:], logins]
        low = self._activity(self.e, tenure.astype(float)) < ch.reduced_activity_fraction
        self._low_run = np.where(low & alive, self._low_run + 1, 0)
        declining = self.state == DE
        for cause, cond in ((ChurnCause.engagement_decline, dropped),
                            (ChurnCause.reduced_activity, self._low_run >= ch.reduced_activity_days)):
            held = self._held[cause]
            self._held[cause] = np.where(~declining, NEVER, np.where(cond & (held == NEVER), d, held))

    def _leave(self, d: int, alive: np.ndarray, mult: np.ndarray, u: np.ndarray) -> None:
        ch, lat = self.sc.churn, self.sc.latent
        resign = ch.resignation_per_month / 30 * np.exp(ch.resignation_sensitivity * (lat.reference - self.e)) * mult
        fade = np.where((self.state == DE) & (self.e < ch.fade_threshold), ch.fade_hazard_per_day, 0.0) * mult
        gone = alive & (u < resign + fade)
        for i in np.flatnonzero(gone).tolist():
            if u[i] < resign[i]:
                cause = ChurnCause.resignation
            else:
                held = {c: int(h[i]) for c, h in self._held.items() if h[i] < NEVER}
                # Nothing sustained before leaving: the tutor just stopped, which the PRD calls inactivity.
                cause = min(held, key=lambda c: (held[c], c.value)) if held else ChurnCause.inactivity
            self.churn_day[i], self.causes[i] = d + 1, cause
            self.transitions.append(Transition(i, d + 1, STATES[self.state[i]], "churned", cause.value))

    # --- truth --------------------------------------------------------------------------------------------
    def day_start(self, d: int) -> datetime:
        return midnight(self.world.epoch_day + timedelta(days=d))

    def onboarding_date(self, i: int):  # noqa: ANN201 - a date
        return self.world.epoch_day + timedelta(days=int(self.onboard_day[i]))

    def known_tutors(self) -> range:
        return range(self.n_known)

    def truth_rows(self, world_id: int, until: datetime) -> list[dict]:
        """synth_truth_tutors rows for every tutor known by ``until``; churn recorded once it has happened."""
        self.advance_to((until.date() - self.world.epoch_day).days + 1)
        rows = []
        for i in self.known_tutors():
            if self.day_start(int(self.onboard_day[i])) >= until:
                continue
            left = self.day_start(int(self.churn_day[i])) if self.churn_day[i] < NEVER else None
            done = left is not None and left <= until
            rows.append({"tutor_id": self.world.tutor_id(i), "world_id": world_id,
                         "initial_archetype": ARCHETYPES[int(self.world.archetype[i])].value,
                         "onboarded_at": self.day_start(int(self.onboard_day[i])),
                         "churned_at": left if done else None,
                         "churn_cause": self.causes[i].value if done else None, "updated_at": until})
        return rows

    def transition_rows(self, start: datetime, end: datetime) -> list[dict]:
        self.advance_to((end.date() - self.world.epoch_day).days + 1)
        rows = []
        for t in self.transitions:
            at = self.day_start(t.day)
            if start <= at < end:
                tid = self.world.tutor_id(t.tutor)
                rows.append({"transition_id": f"{tid}_{at:%Y%m%d}_{t.from_state}_{t.to_state}", "tutor_id": tid,
                             "at": at, "from_state": t.from_state, "to_state": t.to_state, "reason": t.reason})
        return rows
