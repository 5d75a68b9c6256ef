"""How the model card writes numbers, days and tables in markdown."""
from __future__ import annotations

import math

import numpy as np


def fmt(value: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{int(round(value)):,}" if decimals == 0 else f"{value:.{decimals}f}"


def day(d: np.datetime64) -> str:
    return str(np.datetime64(d, "D"))


def instant(t: np.datetime64) -> str:
    return str(np.datetime64(t, "m")).replace("T", " ") + " UTC"


def table(header: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, align, *rows])
