"""Timeouts and retry policies shared by the workflows (standard library + temporalio only)."""
from datetime import timedelta

from temporalio.common import RetryPolicy

# Database work: retried without limit (a DB outage delays evaluations, it never drops them), backing off to 30 s.
DB_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(seconds=30))
# Short, so a worker killed mid-activity hands the work to another attempt quickly.
DB_TIMEOUT = timedelta(seconds=30)
