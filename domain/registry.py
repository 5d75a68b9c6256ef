"""Imports every product table so SQLModel.metadata is complete (Alembic and test fixtures use it).

The simulation's ground-truth tables are registered by migrations/env.py, not here: the product never sees them.
"""
from sqlmodel import SQLModel

from domain.audit.models import AuditLog
from domain.auth.models import AuthToken  # noqa: F401 - sign-in tokens and page sessions
from domain.events.models import TutorEvent
from domain.feedback.models import StudentFeedback
from domain.first_sessions.models import FirstSessionAlert  # noqa: F401 - pre-session alerts
from domain.interventions.models import Intervention, OutboxMessage
from domain.metrics.models import TutorPerformanceMetric
from domain.model_registry.models import ModelVersion  # noqa: F401 - model registry
from domain.rulesets.models import RuleVersion, ShadowDecision  # noqa: F401 - rule administration tables
from domain.scoring.models import ChurnPrediction
from domain.sessions.models import TutoringSession
from domain.students.models import Student
from domain.tiers.models import TierCutoffs, TierHistory
from domain.trends.models import WeeklyTrend
from domain.tutors.models import Tutor
from domain.tutors.notes import TutorNote  # noqa: F401 - manager notes on the tutor profile
from domain.users.models import User
from synth.models import SynthWorld

metadata = SQLModel.metadata

__all__ = [
    "AuditLog", "ChurnPrediction", "Intervention", "OutboxMessage", "Student", "StudentFeedback",
    "SynthWorld", "TierCutoffs", "TierHistory", "Tutor", "TutorEvent", "TutorPerformanceMetric", "TutoringSession", "User", "WeeklyTrend", "metadata",
]
