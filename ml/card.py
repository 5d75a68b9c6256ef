"""The churn model card: card.md plus PNG figures beside it (ml/card_plots.py), written for every trained version.

Every number is computed from the run and its segments (ml.pipeline.evaluate for the per-horizon figures); a horizon
whose label windows have not closed is reported as missing, never estimated, and the limits are stated as plainly.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ml import card_plots as plots
from ml import hazard
from ml.card_format import day as _day
from ml.card_format import fmt as _fmt
from ml.card_format import instant as _instant
from ml.card_format import table as _table
from ml.dataset import SEGMENTS, Segments
from ml.features import DESCRIPTIONS
from ml.labels import HORIZONS
from ml.lead_time import FLAG_LEVELS, WINDOW_DAYS, LeadTimes, lead_times
from ml.pipeline import Run, evaluate
from ml.score import churn_scores, risk_levels
from ml.train import EARLY_STOP, MAX_TREES
from rules.scoring import ScoringRuleSet

FILES = {"roc": "roc_test.png", "calibration": "calibration_test.png", "importance": "feature_importance.png",
         "scores": "score_distribution.png", "lead_time": "lead_time.png"}
# report key, column header, decimals shown
COLUMNS = (("n", "n", 0), ("positives", "positives", 0), ("base_rate", "base rate", 4), ("auc", "AUC-ROC", 3),
           ("precision_at_10", "precision@10%", 3), ("lift_at_10", "lift@10%", 2), ("brier", "Brier", 4),
           ("brier_skill", "Brier skill", 3), ("ece", "ECE", 4))
SEGMENT_NAMES = ("training", "validation", "test")
MODELS = (("xgb", "XGBoost"), ("lr", "LR baseline"))
PRD_TARGETS = (("auc", ">", 0.85), ("precision_at_10", ">", 0.70), ("brier", "<", 0.15))  # PRD, for 30 days
MAX_SHAP_ROWS = 2_000  # a fixed-seed sample beyond this: mean |SHAP| is stable long before, and time is not
BOOTSTRAP = 200  # tutor resamples behind each AUC interval
PIECE_LABEL = "piece start (not a tutor feature)"
_DAY = np.timedelta64(1, "D")
_CAPPED = ("\n\n**Warning:** the calibrator saw no {unseen} label (no such window closed in validation). Their raw "
           "scores lie mostly above what it was fitted on, where it extrapolates (isotonic: flat), so compare the "
           "calibrated and raw maxima above before trusting those probabilities or the churn score built on them.")
LABEL_SOURCES = {
    "truth": "**truth**: the churn instants the synthetic engine recorded for its tutors, handed in by the "
             "composition root (the product code never reads the simulation's truth tables).",
    "inactivity": "**PRD inactivity definition** (no ground truth): a tutor whose last session is on day L and "
                  "who has none on days L+1..L+14 churned on day L+1. A churn is confirmed only 14 days later, "
                  "so labels lag the data by 13 days and a tutor who merely paused for two weeks counts as "
                  "churned.",
}


def _purpose(version: str, rules_spec: ScoringRuleSet, label_source: str, n_features: int) -> str:
    m = rules_spec.model
    weights, lv = " + ".join(f"{m.horizon_weights[h]:.2f} x P({h}d)" for h in HORIZONS), rules_spec.risk_levels
    return f"""# Churn model card: `{version}`

Rules set `{rules_spec.ruleset}` v{rules_spec.version} · labels: {label_source} · generated from the training run

## What the model is and is for

A **staff-only** estimate of how likely each tutor is to stop tutoring (churn) within 1, 7, 30 and 90 days, from
the tutor's {n_features} daily features. People Ops use it to decide whom to contact first. **Tutors never see it**:
not the probabilities, not the score, not the reasons.

- Output per tutor-day: P(churn within 1, 7, 30, 90 days), always P(1d) <= P(7d) <= P(30d) <= P(90d).
- Model churn score 0-100 = 100 x ({weights}) (rules file `model.horizon_weights`).
- Risk level: the rule score's bounds (Low <= {lv.Low:g} < Medium <= {lv.Medium:g} < High <= {lv.High:g} < Critical).
- Top-3 reasons per tutor from the model's exact SHAP contributions for the {m.explain_horizon}-day horizon.
- Which churn score drives interventions is a rules-file setting: currently **{m.drives_interventions}**."""


def _data(segs: Segments, label_source: str) -> str:
    f, t = segs.frame, segs.times
    note = "" if t.source == label_source else f"\n\n**Note:** the churn times were built from `{t.source}`."
    tutors = len(np.unique(f.tutor_ids))
    return f"""## Data

- Feature days **{_day(f.days.min())} to {_day(f.days.max())}**: {len(f):,} tutor-day rows, {tutors:,} tutors,
  {len(f.names)} features (as of each day's 00:00 UTC, from records strictly before it).
- Churn observed up to **{_instant(t.observed_end)}**; labelling lag {int(t.lag / np.timedelta64(1, 'D'))} days.
- Label source: {LABEL_SOURCES.get(label_source, f'`{label_source}`')}{note}"""


def _split(run: Run, segs: Segments) -> str:
    rows = []
    for i, name in enumerate(SEGMENTS):
        m = segs.segment == i
        days = segs.frame.days[m]
        known = segs.times.seen_until(segs.cut[i])
        rows.append([name, _day(days.min()), _day(days.max()), f"{len(np.unique(days))}", f"{int(m.sum()):,}",
                     f"{int((m & segs.times.at_risk).sum()):,}", f"{len(np.unique(segs.frame.tutor_ids[m])):,}",
                     _instant(known)])
    table = _table(["segment", "first day", "last day", "days", "rows", "at-risk rows", "tutors",
                    "churn known up to"], rows)
    val, test = _day(segs.split.val_start), _day(segs.split.test_start)
    counts = "\n".join(f"- {seg}: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in c.items())
                       for seg, c in run.counts.items())
    return f"""## Temporal split (70/15/15 by feature day)

Validation starts **{val}**, test starts **{test}**. Each segment sees churn only as it was known at its end, less
the labelling lag, so no training label depends on the validation or test period and no validation label on the test
period.

{table}

Training examples (pieces of the future, see below):

{counts}"""


def _model(run: Run) -> str:
    edges = ", ".join(f"[{a}, {b})" for a, b in zip(hazard.EDGES[:-1], hazard.EDGES[1:], strict=True))
    secs = ", ".join(f"{k} {v:.1f} s" for k, v in run.seconds.items())
    return f"""## Model and why

**A piecewise-constant hazard model with XGBoost.** Each tutor-day is split into pieces of the future, days {edges}
after the feature day. A piece is one training example: how many days the tutor was at risk in it and whether they
churned in it. XGBoost (Poisson objective, log exposure as offset) predicts a daily churn hazard per piece from the
{len(run.model.names)} features plus the piece's start day, and

    P(churn within h days) = 1 - exp(-sum over pieces of hazard x days of the piece inside [0, h))

so **P(1d) <= P(7d) <= P(30d) <= P(90d) for every tutor by construction**: a longer horizon only adds non-negative
terms. Nothing is sorted or clipped afterwards.

**Why not one classifier per horizon (stacked).** A classifier for "churned within 90 days" can only learn from rows
whose 90-day window closed before the training cut, i.e. rows at least 90 days older than the cut: on a 90-day
backfill there are none, and the 30-day model would see only the first two thirds. A piece instead is cut where the
data stops, so every row teaches every horizon with what was really observed. Separate classifiers can also cross
(P(7d) > P(30d) for some tutor), which a hazard model cannot.

**Baseline.** A logistic regression on the same pieces and features (discrete-time hazard, piece one-hot and log
exposure as inputs), so the two differ only in the learner. The XGBoost model must beat it.

Training time: {secs}."""


def _search(run: Run) -> str:
    search, chosen = run.model.search, run.model.params
    keys = list(dict.fromkeys(k for point in search for k in point))
    shown = {"trees": "trees (early stopping)", "val_poisson_nll": "validation Poisson NLL"}
    rows = [[*(str(p.get(k, "")) for k in keys), "**chosen**" if all(p.get(k) == v for k, v in chosen.items())
             else ""] for p in search]
    return f"""## Hyper-parameter search

Grid search on the validation segment: every point is trained on the training pieces with early stopping on
validation (at most {MAX_TREES} trees, patience {EARLY_STOP}); the lowest validation Poisson negative log-likelihood per
piece wins. The grid is small on purpose: the whole search fits the 30-second training budget.

{_table([*(shown.get(k, k) for k in keys), ""], rows)}

Chosen: `{chosen}`."""


def _calibration(run: Run, segs: Segments, probs: np.ndarray) -> str:
    n_labels = run.counts["val"]["calibration_examples"]
    fitted_on = [h for h in HORIZONS if len(segs.horizon_examples(1, h)[0])]
    raw = hazard.to_probability(np.exp(run.model.log_cumulative(segs.frame.X))).max(axis=0)
    top = ", ".join(f"{h}d {p:.3f} (raw {r:.3f})" for h, p, r in zip(HORIZONS, probs.max(axis=0), raw, strict=True))
    # A calibrator only knows the scores it was fitted on: long horizons whose windows never closed in validation
    # sit above that range, and isotonic is flat there. Say so when it bites instead of letting it pass unseen.
    unseen = " or ".join(f"{h}d" for h in HORIZONS if h not in fitted_on)
    capped = _CAPPED.format(unseen=unseen) if run.model.calibration != "none" and unseen else ""
    scores = run.model.calibration_scores
    rows = [["none (raw model)" if m == "none" else m, _fmt(s, 5), "**chosen**" if m == run.model.calibration else ""]
            for m, s in sorted(scores.items())]
    table = _table(["method", "held-out Brier", ""], rows) if rows else "_No comparison was possible: the " \
        "validation labels hold one class only, so the raw model is used._"
    dropped = "" if "isotonic" in scores or not unseen else (
        f"\n\nIsotonic was not considered: validation held no {unseen} labels, and isotonic regression is flat beyond "
        "the scores it was fitted on, so it would cap those horizons' probabilities at the short horizons' highest rate.")
    return f"""## Calibration

Chosen: **{run.model.calibration}**. One function maps the raw log cumulative hazard to a probability for all four
horizons (scikit-learn `CalibratedClassifierCV` over the frozen model), so a non-decreasing calibrator keeps
P(1d) <= ... <= P(90d); one that would reverse the order is never chosen. Isotonic, Platt (sigmoid) and the raw model
("none") compete on validation without judging a calibrator on the rows it was fitted to: each is fitted on the
earlier half of the validation days and scored by Brier on the later half; the lowest wins and is refitted on all
{n_labels:,} closed validation labels, from the horizons {", ".join(f"{h}d" for h in fitted_on) or "none"}.

{table}{dropped}

Highest probability on any row: {top}.{capped}"""


def _performance_rows(figs: dict, segs: Segments, seg: int) -> tuple[list[list[str]], list[str]]:
    rows, missing = [], []
    first = segs.frame.days[segs.segment == seg].min()
    known = segs.times.seen_until(segs.cut[seg])
    for h in HORIZONS:
        if f"xgb_{h}d" not in figs:
            missing.append(f"- **{h}-day horizon: missing** for {SEGMENT_NAMES[seg]}: no {h}-day label window closed "
                           f"(even the segment's first day, {_day(first)}, needs churn known until "
                           f"{_day(first + h * _DAY)}; it is known until {_instant(known)}). No figures are estimated.")
            rows.append([f"{h}d", "_missing: no closed window_", *("—" for _ in COLUMNS)])
            continue
        for key, name in MODELS:
            r = figs[f"{key}_{h}d"]
            rows.append([f"{h}d", name, *(_fmt(r[k], d) for k, _, d in COLUMNS)])
    return rows, missing


def _performance(figures: dict[str, dict], curves: dict, segs: Segments) -> str:
    header = ["horizon", "model", *(h for _, h, _ in COLUMNS)]
    parts = ["## Performance per horizon",
             "Rows whose whole h-day label window closed by the segment's cut (later rows of a segment have no "
             "label yet for the longer horizons). Precision and lift are over the top 10% of rows by predicted "
             "probability; Brier skill is against the segment's own base rate; ECE over 10 equal-width bins."]
    for seg, figs in ((1, figures["validation"]), (2, figures["test"])):
        rows, missing = _performance_rows(figs, segs, seg)
        table = "\n".join([_table(header, rows, right_from=2), "", *missing])
        parts += [f"### {SEGMENT_NAMES[seg].capitalize()}", table]
    test = figures["test"].get("xgb_30d")
    if test is None:
        parts.append("PRD targets (30-day horizon): **not checkable**, the 30-day horizon is missing on test.")
    else:
        names = {k: h for k, h, _ in COLUMNS}
        checks = [f"{names[k]} {_fmt(test[k], 3)} ({op} {b}: "
                  f"{'met' if (test[k] > b if op == '>' else test[k] < b) else 'not met'})" for k, op, b in PRD_TARGETS]
        parts.append("PRD targets, XGBoost on the 30-day test horizon: " + "; ".join(checks) + ".")
    intervals = []
    for h, c in curves.items():
        if c is not None:
            lo, hi = plots.auc_interval(c[0], c[1], c[3], BOOTSTRAP)
            intervals.append(f"{h}d [{_fmt(lo, 3)}, {_fmt(hi, 3)}]")
    if intervals:
        parts.append(f"Test AUC-ROC of XGBoost, 95% interval from {BOOTSTRAP} resamples of tutors: "
                     + ", ".join(intervals) + ".")
    parts += [f"![ROC curves on the test segment]({FILES['roc']})",
              f"![Calibration on the test segment]({FILES['calibration']})"]
    return "\n\n".join(parts)


def _gain(model, names: tuple[str, ...]) -> list[tuple[str, float]]:  # noqa: ANN001
    """XGBoost's gain keyed by feature name; the booster knows columns as f0.. (or by name when it was given
    names), and the column after the tutor features is the piece start."""
    labels = {**{f"f{i}": n for i, n in enumerate(names)}, f"f{len(names)}": PIECE_LABEL,
              hazard.PIECE_FEATURE: PIECE_LABEL}
    score = model.regressor.get_booster().get_score(importance_type="gain")
    return [(labels.get(k, k), float(v)) for k, v in score.items()]


def _importance(run: Run, segs: Segments, horizon: int, out_dir: Path) -> str:
    names = run.model.names
    rows = np.flatnonzero((segs.segment == 2) & segs.times.at_risk)
    if len(rows) > MAX_SHAP_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_SHAP_ROWS, replace=False))
    shap = np.abs(run.model.contributions(segs.frame.X[rows], horizon=horizon)[0]).mean(axis=0) if len(rows) \
        else np.zeros(len(names))
    gain = dict(_gain(run.model, names))
    plots.feature_importance(list(zip(names, shap.tolist(), strict=True)), list(gain.items()),
                             out_dir / FILES["importance"])
    order = np.argsort(-shap, kind="stable")
    gain_rank = {n: i + 1 for i, (n, _) in enumerate(sorted(gain.items(), key=lambda kv: -kv[1]))}
    table = _table(["rank", "feature", "mean abs SHAP", "gain", "gain rank"],
                   [[str(i + 1), f"`{names[j]}`", f"{shap[j]:.4f}", _fmt(gain.get(names[j], 0.0), 2),
                     str(gain_rank.get(names[j], "never split"))] for i, j in enumerate(order[:15])], right_from=2)
    piece = gain.get(PIECE_LABEL)
    return f"""## Feature importance

Mean absolute SHAP contribution to the {horizon}-day log hazard (the horizon whose top-3 reasons staff see) over
{len(rows):,} at-risk test rows, next to XGBoost's average gain per split. SHAP says what moves individual predictions;
gain what the trees leaned on while training. The trees also split on the piece start (gain
{_fmt(piece, 2) if piece is not None else 'n/a, never split'}): that is the shape of the hazard over the future, not
anything about the tutor, so SHAP folds it into the baseline and it is never shown as a reason.

{table}

![Feature importance]({FILES['importance']})"""


def _scores(scores: np.ndarray, levels: np.ndarray, segs: Segments, rules_spec: ScoringRuleSet, out_dir: Path) -> str:
    rows = np.flatnonzero((segs.segment == 2) & segs.times.at_risk)
    h = max((h for h in HORIZONS if len(segs.horizon_examples(2, h)[0])), default=None)
    closed, y = segs.horizon_examples(2, h) if h else (np.zeros(0, dtype=np.int64), np.zeros(0))
    observed, churned = np.isin(rows, closed), np.isin(rows, closed[y == 1])
    bounds = rules_spec.risk_levels.model_dump()
    plots.score_distribution(scores[rows], bounds, out_dir / FILES["scores"], churned=churned,
                             churn_label=f"churned within {h} days" if h else "")
    table = [[level, f"{int(m.sum()):,}", _fmt(m.mean() if len(rows) else math.nan, 3), f"{int(k.sum()):,}",
              _fmt(churned[k].mean(), 3) if k.any() else "n/a"]
             for level, m, k in ((lv, levels[rows] == lv, (levels[rows] == lv) & observed) for lv in bounds)]
    head = ["risk level", "test rows", "share", f"rows with a closed {h}-day window" if h else "closed window",
            f"share churned within {h} days" if h else "churn rate"]
    return f"""## Churn score distribution

Model churn scores of the {len(rows):,} at-risk test rows, by the rules file's risk levels.

{_table(head, table)}

![Churn score distribution]({FILES['scores']})"""


def _lead_rows(label: str, lt: LeadTimes) -> list[str]:
    (q1, med, q3), share = lt.quartiles(), _fmt(lt.share_flagged, 3)
    return [label, f"{lt.churns:,}", f"{lt.tutors:,}", f"{lt.flagged:,}", share, _fmt(med, 1),
            f"{_fmt(q1, 1)} – {_fmt(q3, 1)}" if lt.flagged else "n/a"]


def _lead(levels: np.ndarray, segs: Segments, out_dir: Path) -> tuple[LeadTimes, str]:
    f, t = segs.frame, segs.times
    start = f.days.min().astype("datetime64[s]")
    end = min((f.days.max() + _DAY).astype("datetime64[s]"), t.seen_until(t.observed_end))
    every = lead_times(f.tutor_ids, f.days, levels, t.event_at, start=start, end=end)
    test = segs.segment == 2
    late = lead_times(f.tutor_ids[test], f.days[test], levels[test], t.event_at[test],
                      start=segs.split.test_start.astype("datetime64[s]"), end=end)
    flag, test_days = " or ".join(FLAG_LEVELS), len(np.unique(f.days[test]))
    last = _day(end - np.timedelta64(1, "s"))  # the last churn day counted: end is exclusive
    plots.lead_time_histogram(every.leads, WINDOW_DAYS, out_dir / FILES["lead_time"], churns=every.churns)
    table = _table(["which churns", "churns", "tutors", "flagged ahead", "share flagged", "median lead (days)",
                    "quartiles (days)"],
                   [_lead_rows(f"all churns {_day(start)} to {last} (flags from any row)", every),
                    _lead_rows(f"churns {_day(segs.split.test_start)} to {last}, flags from test rows only", late)])
    return every, f"""## Lead time

For every churn observed in the data window (churn known by {_instant(end)}), the first feature day in the
{WINDOW_DAYS} days up to the churn on which the model's risk level was {flag}; lead = churn day - that day. A churn
never flagged in those days counts as not flagged ahead.

{table}

The first row scores every row with the final model, and most of those rows are training rows, so it is optimistic;
the second is out of sample but cannot show a lead longer than the test segment ({test_days} days). Churns early
in the window had fewer than {WINDOW_DAYS} feature days before them, which also caps their lead.

![Lead time histogram]({FILES['lead_time']})"""


def _limitations(curves: dict, label_source: str, lead_churns: int) -> str:
    positives = ", ".join(f"{h}d {int(c[0].sum()):,} rows from {len(np.unique(c[3][c[0] == 1])):,} tutors"
                          for h, c in curves.items() if c is not None)
    world = ("All figures come from **one simulated world** (one seed, one set of engine rules): they say how well "
             "the model recovers that simulation's churn, not how it will do on real tutors."
             if label_source == "truth" else
             "Labels follow the PRD inactivity rule, not confirmed departures: a two-week pause counts as churn, and "
             "a tutor who stays but teaches rarely may never be labelled.")
    return f"""## Limitations: what these figures cannot tell

- **Few churners.** Churned test rows per horizon: {positives or 'none'}; churns in the lead-time window:
  {lead_churns}. A handful of churners swings AUC, precision@10% and calibration by several points; the intervals
  above are the honest width.
- **Correlated tutor-days.** A tutor appears once per day and consecutive days are near-duplicates, so n overstates
  the independent evidence: the effective sample is closer to the number of tutors and churners. The AUC intervals
  resample tutors for that reason; the other figures have no interval.
- {world}
- **Closed windows only.** Long horizons are evaluated on the earliest days of a segment only (later rows have no
  label yet), so their figures describe a shorter and earlier stretch than the short horizons'.
- **Time.** One validation and one test period, adjacent to training. Seasonality, policy changes and a changing
  tutor population are not covered; daily retraining and the champion/challenger check are the guard, not these
  numbers."""


def _features(names: tuple[str, ...]) -> str:
    rows = [[f"`{n}`", DESCRIPTIONS.get(n, "")] for n in names]
    return "## Features\n\n" + _table(["feature", "definition"], rows, right_from=2)


def _test_curves(run: Run, segs: Segments, probs: np.ndarray) -> dict:
    """horizon -> (y, p_xgb, p_lr, tutor ids) on the test rows with a closed window, or None."""
    out = {}
    for j, h in enumerate(HORIZONS):
        rows, y = segs.horizon_examples(2, h)
        out[h] = (y, probs[rows, j], run.baseline.predict(segs.frame.X[rows])[:, j], segs.frame.tutor_ids[rows]) \
            if len(rows) else None
    return out


def write_card(run: Run, segs: Segments, out_dir: Path, *, rules_spec: ScoringRuleSet, version: str,
               label_source: str) -> Path:
    """Write out_dir/card.md and its PNG figures; returns the card's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    probs = run.model.predict(segs.frame.X)
    scores = churn_scores(probs, rules_spec)
    levels = np.asarray(risk_levels(scores, rules_spec), dtype=object)
    figures = {"validation": evaluate(run, segs, 1), "test": evaluate(run, segs, 2)}
    curves = _test_curves(run, segs, probs)
    plots.roc_curves(curves, out_dir / FILES["roc"])
    plots.calibration_curves(curves, out_dir / FILES["calibration"])
    leads, lead = _lead(levels, segs, out_dir)
    sections = [_purpose(version, rules_spec, label_source, len(run.model.names)), _data(segs, label_source),
                _split(run, segs), _model(run), _search(run), _calibration(run, segs, probs),
                _performance(figures, curves, segs),
                _importance(run, segs, rules_spec.model.explain_horizon, out_dir),
                _scores(scores, levels, segs, rules_spec, out_dir), lead,
                _limitations(curves, label_source, leads.churns), _features(run.model.names)]
    path = out_dir / "card.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path
