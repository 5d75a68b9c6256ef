"""Scenario files: every tunable of the simulation, so another world can be run without code changes.

A scenario is YAML validated into the models below (unknown keys are errors, so a typo cannot silently fall
back to a default). Errors name the file, line and field, as rules files do. The content hash identifies a
scenario in reports: comments and formatting do not change it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rules.loader import RulesError, content_hash, parse_source, validate_model

DEFAULT_PATH = Path(__file__).parent / "scenarios" / "default.yaml"

State = Literal["thriving", "steady", "declining", "recovering"]
ArchetypeName = Literal["high_performer", "at_risk", "new", "steady", "churner"]
InterventionType = Literal["A1_coaching_tips", "A2_training_module", "A3_first_session_checkin",
                           "A4_reschedule_alert", "H1_coaching_session", "H2_peer_mentoring", "H3_pip",
                           "H4_retention_interview", "H5_recognition"]
Probability = float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Normal(_Strict):
    mean: float
    sd: float = Field(ge=0)


class LogNormal(_Strict):
    """A positive per-tutor rate: median times exp(log_sd * z), so a few tutors sit well above their kind."""

    median: float = Field(gt=0)
    log_sd: float = Field(ge=0)


class Transitions(_Strict):
    """Monthly hazards of moving between latent states (converted to daily: h / 30)."""

    thriving_to_steady: float = Field(ge=0)
    steady_to_thriving: float = Field(ge=0)
    to_declining: float = Field(ge=0)  # from thriving or steady
    declining_to_recovering: float = Field(ge=0)
    recovering_to_steady: float = Field(ge=0)
    recovering_to_declining: float = Field(ge=0)


class Archetype(_Strict):
    share: float = Field(ge=0, le=1)
    initial_state: dict[State, float]
    quality: Normal  # mean student rating (1-5) at the tutor's own engagement reference
    session_engagement: Normal  # engagement_score of a session (0-1)
    reschedule_p: LogNormal  # per session, at the reference engagement
    no_show_p: LogNormal
    late_p: LogNormal
    late_mean_minutes: float = Field(gt=0)
    objectives_p: Normal
    technical_p: Probability = Field(ge=0, le=1)
    logins_per_day: LogNormal
    transitions: Transitions

    @model_validator(mode="after")
    def _weights(self) -> Archetype:
        if not self.initial_state or sum(self.initial_state.values()) <= 0:
            raise ValueError("initial_state needs at least one positive weight")
        return self


class Population(_Strict):
    baseline_sessions_per_week: Normal
    baseline_range: tuple[float, float]
    tenured_onboarding_days_before_epoch: tuple[float, float]
    new_tenure_days_at_epoch: tuple[float, float]  # New tutors: < 30 days tenure (PRD §1.1)
    onboarding_fill_rate: float = Field(ge=0, le=1)  # daily share of the gap to the target headcount hired
    capacity_factor: int = Field(ge=2)  # tutor ids reserved per initial tutor (hires continue the sequence)
    students_per_tutor: int = Field(ge=1)


class Volume(_Strict):
    sessions_per_day: int = Field(gt=0)
    n_tutors: int = Field(gt=0)


class Calendar(_Strict):
    weekday: list[float] = Field(min_length=7, max_length=7)  # Mon..Sun relative demand
    weekday_hours: list[float] = Field(min_length=24, max_length=24)
    weekend_hours: list[float] = Field(min_length=24, max_length=24)
    minute_weights: list[float] = Field(min_length=12, max_length=12)  # 5-minute slots within the hour
    login_hours: list[float] = Field(min_length=24, max_length=24)


class NoShows(_Strict):
    monday_factor: float = Field(ge=1)
    morning_factor: float = Field(ge=1)
    morning_hours: tuple[int, int]


class Latent(_Strict):
    """Engagement e_t: a mean-reverting walk towards its state's target, plus daily noise."""

    reference: float = Field(gt=0, lt=1)  # the engagement at which a tutor shows their own base rates
    targets: dict[State, float]
    reversion: float = Field(gt=0, le=1)  # share of the gap to the target closed per day
    noise_sd: float = Field(ge=0)
    tutor_offset_sd: float = Field(ge=0)  # a tutor's own target sits this far from the state's
    hazard_sensitivity: float = Field(ge=0)  # decline hazard x exp(s * (reference - e))
    new_tutor_decline_factor: float = Field(ge=0)  # decline hazard multiplier in the first 60 days


class Observables(_Strict):
    """How behaviour follows engagement: rates scale by exp(slope * (reference - e))."""

    activity_floor: float  # engagement at which a tutor books nothing
    activity_cap: float = Field(gt=0)
    reschedule_slope: float
    no_show_slope: float
    late_slope: float
    login_exponent: float  # logins ~ (e / reference) ** exponent
    rating_slope: float
    objectives_slope: float
    rating_noise_sd: float = Field(ge=0)
    new_ramp_days: float = Field(gt=0)
    new_ramp_floor: float = Field(ge=0, le=1)
    new_quality_gap: float = Field(ge=0)
    new_quality_gap_days: float = Field(gt=0)
    first_session_penalty: float = Field(ge=0)
    first_session_tenure_penalty: float = Field(ge=0)
    first_session_tenure_days: float = Field(gt=0)
    activity_led_share: float = Field(ge=0, le=1)
    activity_led_login_exponent: float = Field(ge=0)
    first_session_mismatch_p: float = Field(ge=0, le=1)
    first_session_mismatch_tenure_p: float = Field(ge=0, le=1)
    first_session_mismatch_stars: float = Field(ge=0, le=4)
    new_pairing_p: Probability = Field(ge=0, le=1)
    new_tutor_new_pairing_p: Probability = Field(ge=0, le=1)
    durations: dict[int, float]
    feedback_p: Probability = Field(ge=0, le=1)
    free_text_p: Probability = Field(ge=0, le=1)
    free_text_p_low: Probability = Field(ge=0, le=1)


class Reschedules(_Strict):
    tutor_initiated_share: Probability = Field(ge=0, le=1)
    reasons: dict[str, float]
    short_notice_p: Probability = Field(ge=0, le=1)
    short_notice_p_disengaged: Probability = Field(ge=0, le=1)


class Behaviour(_Strict):
    """Tutor events other than logins and reschedule requests (PRD §1.3)."""

    messages_per_day: float = Field(ge=0)
    response_minutes_median: float = Field(gt=0)
    response_slope: float  # response time x exp(slope * (reference - e))
    availability_changes_per_week: float = Field(ge=0)
    availability_reduction_p_disengaged: Probability = Field(ge=0, le=1)
    trainings_per_month: float = Field(ge=0)


class Churn(_Strict):
    """The PRD's churn definitions (§1.4): abrupt resignation, and fades judged by what the tutor did."""

    resignation_per_month: float = Field(ge=0)
    resignation_sensitivity: float = Field(ge=0)  # hazard x exp(s * (reference - e))
    fade_threshold: float  # a declining tutor below this engagement may leave ...
    fade_hazard_per_day: float = Field(ge=0, le=1)  # ... with this daily hazard
    inactivity_days: int = Field(gt=0)
    reduced_activity_fraction: float = Field(gt=0, lt=1)
    reduced_activity_days: int = Field(gt=0)
    login_drop: float = Field(gt=0, lt=1)
    login_drop_days: int = Field(gt=0)


class Effect(_Strict):
    """What an intervention does to a tutor who does not ignore it, for ``duration_weeks`` from the next day."""

    ignore_probability: Probability = Field(ge=0, le=1)
    hazard_multiplier: float = Field(ge=0)  # on decline and churn hazards; divides the recovery hazard
    engagement_boost: float  # added to the engagement target
    duration_weeks: float = Field(gt=0)


class Notifications(_Strict):
    """How tutors treat the in-app messages automated interventions send them (synth/responses.py).

    Probabilities move linearly from the engaged value (at or above the reference engagement) to the
    disengaged one (at the activity floor); delays stretch by exp(delay_slope * (reference - e)), so an
    engaged tutor reads within hours and a fading one days later, if at all.
    """

    open_p_engaged: Probability = Field(ge=0, le=1)
    open_p_disengaged: Probability = Field(ge=0, le=1)
    open_delay_hours: LogNormal  # from the message going out to the tutor opening it, at the reference
    answer_p_engaged: Probability = Field(ge=0, le=1)  # of the messages opened
    answer_p_disengaged: Probability = Field(ge=0, le=1)
    answer_delay_hours: LogNormal  # from opening to answering, at the reference
    delay_slope: float = Field(ge=0)
    # A message not opened (or answered) this long after it went out never is: it also bounds how far back
    # a live tick looks for messages still waiting on their tutor.
    give_up_days: float = Field(gt=0, le=60)
    answers: list[str] = Field(min_length=1)  # what a tutor writes back, picked uniformly

    @model_validator(mode="after")
    def _answers(self) -> Notifications:
        if any(not a.strip() or len(a) > 2000 for a in self.answers):
            raise ValueError("answers must be non-empty and at most 2000 characters (the outbox's limit)")
        return self


class Scenario(_Strict):
    name: str
    volume: Volume
    population: Population
    archetypes: dict[ArchetypeName, Archetype]
    calendar: Calendar
    no_shows: NoShows
    latent: Latent
    observables: Observables
    reschedules: Reschedules
    behaviour: Behaviour
    churn: Churn
    interventions: dict[InterventionType, Effect]
    notifications: Notifications

    @model_validator(mode="after")
    def _shares(self) -> Scenario:
        total = sum(a.share for a in self.archetypes.values())
        if abs(total - 1) > 1e-6:
            raise ValueError(f"archetype shares must sum to 1, not {total:g}")
        if "new" not in self.archetypes:
            raise ValueError("archetype 'new' is required: hires join as New tutors")
        return self


@dataclass(frozen=True)
class LoadedScenario:
    path: str
    hash: str  # sha256 of the parsed content: equal hashes simulate identical worlds
    scenario: Scenario = field(compare=False, hash=False)


def parse_scenario(text: str, path: str) -> LoadedScenario:
    source = parse_source(text, path)
    return LoadedScenario(path=path, hash=content_hash(source.data), scenario=validate_model(source, Scenario))


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> LoadedScenario:
    return parse_scenario(Path(path).read_text(encoding="utf-8"), path)


def load_scenario(path: Path | str | None = None) -> LoadedScenario:
    """The scenario at ``path`` (default: synth/scenarios/default.yaml); raises RulesError when invalid."""
    p = Path(path or DEFAULT_PATH).resolve()
    try:
        return _load(str(p), p.stat().st_mtime)
    except OSError as exc:
        raise RulesError([f"{p}:1: cannot read scenario: {exc.strerror}"]) from None
