"""Argument types the `tutorpulse` subcommands share, so every command refuses the same bad input the same way."""
from __future__ import annotations

import argparse
from datetime import date


def iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def split_days(text: str) -> int:
    """A span of days long enough for a train / validation / test split."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 3:
        raise argparse.ArgumentTypeError("must be at least 3 (train, validation and test each need a day)")
    return value
