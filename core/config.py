"""The one settings object. Nothing else in TutorPulse reads the environment."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where rules/ ships, installed or checked out


def normalise_database_url(url: str) -> str:
    """postgres:// and postgresql:// become postgresql+psycopg:// (psycopg 3 is the only driver we ship)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Relative to the working directory (./var), so an installed copy never writes into site-packages.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'var' / 'tutorpulse.db'}")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "tutorpulse"
    # Multiplies every workflow timer (SLAs, follow-ups). 1.0 = real time; the demo uses 1/1440 so that
    # a 48-hour SLA lapses in two minutes.
    time_scale: float = Field(default=1.0, gt=0)
    rules_dir: Path = PACKAGE_ROOT / "rules"
    var_dir: Path = Field(default_factory=lambda: Path.cwd() / "var")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Sessions that a tutor workflow has not evaluated this long after ingestion are re-signalled by the sweep.
    sweep_interval_seconds: int = 60
    sweep_grace_seconds: int = 30
    # Periodic evaluation (PRD "Evaluation Frequency"), as Temporal Schedule cron expressions in UTC.
    daily_rollup_cron: str = "0 0 * * *"        # every tutor re-evaluated at midnight UTC
    weekly_trends_cron: str = "15 0 * * 1"      # 7-day moving averages, Mondays after the rollup
    monthly_review_cron: str = "30 0 1 * *"     # tier cut-offs from the population, the 1st of each month
    # Live synthetic feed (demo): how often a tick runs and the daily volume it simulates.
    synth_seed: int = 7
    synth_tick_seconds: int = 15
    synth_sessions_per_day: int = 3000
    synth_tutors: int = 250
    # Email of automated interventions (outbox channel "email"). The defaults point at the local mail sink
    # (`tutorpulse mailsink`, started by the demo), so nothing leaves the machine unless configured to.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_from: str = "TutorPulse <noreply@tutorpulse.local>"
    # Per socket operation; keep it well under the delivery activity's start-to-close timeout.
    smtp_timeout_seconds: float = Field(default=10, gt=0)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None  # SecretStr: never printed with the settings
    # Where the local sink writes every message it receives, one file per delivery.
    mail_dir: Path = Field(default_factory=lambda: Path.cwd() / "var" / "mail")
    # Churn model registry: one folder per version (model.pkl and its card) under models_dir (default var/models).
    models_dir: Path | None = None
    model_retrain_cron: str = "0 1 * * *"    # daily retraining, after the midnight rollup wrote the day's rows
    model_training_days: int = Field(default=90, ge=3)  # feature days the daily retraining trains on
    # Training is minutes on a big world, not seconds: the activity's bound, and how long a silent worker may go
    # before Temporal hands the training to another.
    model_train_timeout_seconds: int = Field(default=3600, gt=0)
    model_train_heartbeat_seconds: int = Field(default=120, gt=0)
    model_score_timeout_seconds: int = Field(default=900, gt=0)  # scoring the population after the decision
    # The first N hyper-parameter points of ml.train.GRID the retraining tries (None: all); fewer trade tuning
    # for time on a small machine.
    model_grid_points: int | None = Field(default=None, ge=1)

    # --- accounts and security (issue 7) ---
    # Signs CSRF tokens and peppers stored token hashes. Unset: generated once into var_dir/keys (embedded demo);
    # set it (and pii_key) in production, where several API processes must agree on it.
    secret_key: SecretStr | None = None
    # AES-256-GCM key for PII columns (names, emails), urlsafe base64 of 32 bytes. pii_previous_keys: comma-separated
    # older keys, still accepted for reading while rows are re-encrypted (rotation).
    pii_key: SecretStr | None = None
    pii_previous_keys: SecretStr | None = None
    # argon2id cost (argon2-cffi's recommended defaults); a stored hash made with other values is upgraded at sign-in.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65536, ge=64)
    access_token_minutes: int = Field(default=60, gt=0)      # OAuth2 bearer tokens (API)
    session_minutes: int = Field(default=480, gt=0)          # page session cookie
    # Secure cookies; browsers accept them on http://127.0.0.1 and localhost, so the demo keeps the default.
    cookie_secure: bool = True
    # Rate limits, in the `limits` package's notation; the storage is per process (memory://) unless pointed at
    # a shared store (redis://host:6379) when several API processes run.
    login_rate_limit: str = "10/minute"
    feedback_rate_limit: str = "60/minute"
    rate_limit_storage_uri: str = "memory://"
    # Retention (PRD compliance): session/feedback records 7 years, audit rows 3 years; a daily Temporal Schedule.
    record_retention_days: int = Field(default=2557, ge=2557)
    audit_retention_days: int = Field(default=1096, ge=1096)
    retention_cron: str = "30 3 * * *"
    # Optional single sign-on (OpenID Connect, authorization-code flow). Unset issuer: local accounts only.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    # The id-token claim naming the TutorPulse role; an account must still exist (matched by email) to sign in.
    oidc_role_claim: str | None = None
    # Student feedback (PRD UI System 3): when no feedback has arrived this long after a session's feedback link
    # was issued, the student gets one email reminder. A workflow timer, so multiplied by time_scale like the rest.
    feedback_reminder_hours: float = Field(default=24, gt=0)
    # Where people reach the pages, for the links in emails (None: http://api_host:api_port, the local demo).
    public_url: str | None = None

    @model_validator(mode="after")
    def _models_dir(self) -> Settings:
        if self.models_dir is None:
            self.models_dir = self.var_dir / "models"
        return self

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("OIDC_ISSUER is set but OIDC_CLIENT_ID is not: single sign-on needs both")
        return self

    @field_validator("login_rate_limit", "feedback_rate_limit")
    @classmethod
    def _rate_limit(cls, v: str) -> str:
        from limits import parse  # local: the settings module stays importable before dependencies resolve

        try:
            parse(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a rate limit such as '10/minute' or '5 per second'") from None
        return v

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, v: str) -> str:
        return normalise_database_url(v)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def site_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")


@lru_cache
def get_settings() -> Settings:
    return Settings()
