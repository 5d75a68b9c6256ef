"""The data retention run (a daily Temporal Schedule): educational records past settings.record_retention_days and
audit rows past settings.audit_retention_days are deleted (PRD "Compliance & Security": 7 years, 3 years).

Thin and deterministic: the run's "today" is workflow.now(), fixed here and handed to the activity, so a replay or
a retry purges against the same boundary and a test can pass its own. Standard library + temporalio only.

Times in the payloads are ISO 8601 strings: these dataclasses live in the workflow module, which the sandbox
re-imports with a proxied datetime class that the data converter does not recognise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.policies import DB_RETRY

# activities/retention.py RetentionActivities.purge_expired, called by name: that module imports the payloads
# below, so importing it here would be circular.
PURGE_EXPIRED = "purge_expired"
# Many batches on the first run over years of data; a stuck worker is noticed through the heartbeat instead.
PURGE_TIMEOUT = timedelta(hours=2)
PURGE_HEARTBEAT = timedelta(minutes=2)


@dataclass
class RetentionInput:
    as_of: str | None = None  # ISO 8601 with zone; None: the run's own start (workflow.now())
    batch_size: int = 1000  # rows per delete transaction


@dataclass
class PurgeInput:
    as_of: str  # ISO 8601 with zone
    batch_size: int = 1000


@dataclass
class RetentionResult:
    as_of: str
    record_cutoff: str  # educational records before this instant were deleted
    audit_cutoff: str  # audit rows before this instant were deleted
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows deleted by this run


@workflow.defn
class RetentionWorkflow:
    @workflow.run
    async def run(self, inp: RetentionInput) -> RetentionResult:
        as_of = inp.as_of or workflow.now().isoformat()
        return await workflow.execute_activity(
            PURGE_EXPIRED, PurgeInput(as_of=as_of, batch_size=inp.batch_size), result_type=RetentionResult,
            start_to_close_timeout=PURGE_TIMEOUT, heartbeat_timeout=PURGE_HEARTBEAT, retry_policy=DB_RETRY)
