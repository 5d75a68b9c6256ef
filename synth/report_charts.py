"""PNG charts for the realism report, drawn from the same arrays the checks use."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the report runs in CI and over SSH

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from synth.report import (  # noqa: E402
    ARCHETYPE_TARGETS, WEEKDAYS, archetype_shares, daily_sessions, noshow_rates, tutor_archetypes,
)
from synth.report_queries import DAY_S, ReportData  # noqa: E402

TENURE_COHORTS = ((0, 30, "<30 d"), (30, 90, "30-90 d"), (90, 180, "90-180 d"), (180, 365, "180-365 d"),
                  (365, np.inf, "1 y+"))


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _empty(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def sessions_per_day(d: ReportData, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.5))
    counts = daily_sessions(d)
    if len(counts):
        dates = [datetime.fromtimestamp(int(x) * DAY_S, UTC) for x in d.full_days]
        ax.bar(dates, counts, width=0.8, color=["#e08a4b" if dt.weekday() >= 5 else "#4b7be0" for dt in dates])
        ax.axhline(3000, color="k", lw=1, ls="--", label="PRD 3,000/day")
        ax.axhspan(2700, 3300, color="k", alpha=0.07)
        ax.legend(loc="lower right")
        fig.autofmt_xdate()
    else:
        _empty(ax, "no full day in the window")
    ax.set_title("Sessions per full UTC day (orange: weekend)")
    return _save(fig, path)


def noshow_heatmap(d: ReportData, path: Path) -> str:
    n, ns = noshow_rates(d)
    rate = np.divide(ns, n, out=np.full_like(n, np.nan), where=n >= 20)  # thin cells are noise
    fig, ax = plt.subplots(figsize=(10, 3.5))
    im = ax.imshow(100 * rate, aspect="auto", cmap="magma_r")
    ax.set_yticks(range(7), WEEKDAYS)
    ax.set_xticks(range(0, 24, 2))
    ax.set_xlabel("scheduled hour (UTC)")
    ax.set_title("No-show rate % by weekday x hour (blank: < 20 sessions)")
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def rating_by_tenure(d: ReportData, path: Path) -> str:
    r = d.rated
    tenure = (r["day"] * DAY_S - d.onboarded_ts[r["tutor"]]) / DAY_S if len(r["n"]) else np.array([])
    fig, ax = plt.subplots(figsize=(8, 3.8))
    labels, shares = [], []
    for lo, hi, label in TENURE_COHORTS:
        m = (tenure >= lo) & (tenure < hi)
        by = np.bincount(r["bucket"][m], weights=r["n"][m], minlength=6)[1:6]
        if by.sum():
            labels.append(f"{label} (n={int(by.sum()):,})")
            shares.append(100 * by / by.sum())
    if not shares:
        _empty(ax, "no rated session")
        return _save(fig, path)
    left = np.zeros(len(shares))
    colours = plt.cm.RdYlGn(np.linspace(0.05, 0.95, 5))
    for k in range(5):
        vals = np.array([s[k] for s in shares])
        ax.barh(labels, vals, left=left, color=colours[k], label=f"{k + 1}★")
        left += vals
    ax.set_xlabel("% of rated sessions")
    ax.set_title("Rating distribution by tutor tenure at session time")
    ax.legend(ncols=5, loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8)
    return _save(fig, path)


def churn_by_month(d: ReportData, path: Path) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.8))
    t = d.truth
    ok = ~np.isnan(t["churned_ts"]) if d.has_truth else np.array([], bool)
    if not ok.any():
        _empty(ax, "no ground-truth churn stored")
        return _save(fig, path)
    months = [datetime.fromtimestamp(x, UTC).strftime("%Y-%m") for x in t["churned_ts"][ok]]
    pairs = Counter(zip(months, t["cause"][ok].tolist(), strict=True))
    mlist, causes = sorted(set(months)), sorted({c for _, c in pairs})
    bottom = np.zeros(len(mlist))
    for cause in causes:
        vals = np.array([pairs.get((m, cause), 0) for m in mlist], float)
        ax.bar(mlist, vals, bottom=bottom, label=cause or "unstated")
        bottom += vals
    ax.set_ylabel("tutors churned")
    ax.set_title("Ground-truth churn by month and cause (all stored, not only the window)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def archetype_chart(d: ReportData, path: Path) -> str:
    kinds = tutor_archetypes(d)
    at_start = archetype_shares(kinds[d.onboarded_ts <= d.start_ts])
    everyone = archetype_shares(kinds)
    names = list(ARCHETYPE_TARGETS)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(x - 0.27, [ARCHETYPE_TARGETS[k] for k in names], 0.27, label="PRD target", color="#bbbbbb")
    ax.bar(x, [at_start[k] for k in names], 0.27, label="tutors at window start")
    ax.bar(x + 0.27, [everyone[k] for k in names], 0.27, label="all tutors")
    ax.set_xticks(x, names)
    ax.set_ylabel("% of tutors")
    ax.set_title("Behavioural archetype shares")
    ax.legend(fontsize=8)
    return _save(fig, path)


def draw_all(d: ReportData, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    return [sessions_per_day(d, out / "sessions_per_day.png"), noshow_heatmap(d, out / "noshow_heatmap.png"),
            rating_by_tenure(d, out / "rating_by_tenure.png"), churn_by_month(d, out / "churn_by_month.png"),
            archetype_chart(d, out / "archetype_shares.png")]
