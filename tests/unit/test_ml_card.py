"""The churn model card: lead times by hand on tiny arrays, then a card written for a model really trained on
the synthetic arrays of test_ml_train, checked section by section against evaluate(), the truth it was
trained on and the PNG files it points to."""
from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, datetime
from itertools import takewhile

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from core.config import get_settings
from ml.card import FILES, PIECE_LABEL, _calibration, _gain, write_card
from ml.dataset import segments
from ml.lead_time import lead_times
from ml.pipeline import calibration_set, evaluate, fit
from ml.score import churn_scores, risk_levels
from ml.train import GRID, _HorizonScore
from rules.scoring import active_scoring_rules
from tests.unit.test_ml_train import synthetic_world, times_from

D = np.datetime64("2026-03-01", "D")
PNG = b"\x89PNG\r\n\x1a\n"


def _rows(tutor: str, first: int, last: int, churn: str | None, flags: dict[int, str] | None = None):  # noqa: ANN202
    """One tutor's daily rows D+first..D+last, every row pointing at the same churn instant."""
    days = D + np.arange(first, last + 1)
    levels = [(flags or {}).get(i, "Low") for i in range(first, last + 1)]
    event = np.full(len(days), np.datetime64(churn) if churn else np.datetime64("NaT"), dtype="datetime64[s]")
    return np.full(len(days), tutor, dtype=object), days, levels, event


def _stack(*parts):  # noqa: ANN001, ANN202
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [lv for p in parts for lv in p[2]], np.concatenate([p[3] for p in parts]))


def test_lead_time_by_hand() -> None:
    ids, days, levels, event = _stack(
        # churns D+100 at 15:00; High on D+80 and Critical on D+95: the first flag is 20 days ahead
        _rows("early", 0, 100, "2026-06-09T15:00", {80: "High", 95: "Critical", 30: "Medium"}),
        # churns D+50, only Medium: a churner, never flagged
        _rows("never", 0, 50, "2026-04-20T00:00", {10: "Medium"}),
        # churns D+199; High at D+100 (99 days ahead, outside the 90-day window) and at D+150 (49 days ahead)
        _rows("window", 0, 199, "2026-09-16T08:00", {100: "High", 150: "High"}),
        # only flag 91 days ahead: outside the window, so never flagged
        _rows("just_out", 0, 120, "2026-06-29T00:00", {29: "Critical"}),
        # flagged on the churn day itself (features as of 00:00, churn at 18:00): lead 0
        _rows("same_day", 0, 60, "2026-04-30T18:00", {60: "High"}),
        # churns after the span: ignored whatever its flags
        _rows("later", 0, 120, "2026-12-01T00:00", {100: "Critical"}),
        # never churns: ignored
        _rows("stays", 0, 120, None, {50: "Critical"}),
    )
    lt = lead_times(ids, days, levels, event, start=np.datetime64("2026-03-01T00:00"),
                    end=np.datetime64("2026-10-01T00:00"))
    got = dict(zip(lt.tutor_ids.tolist(), (lt.churn_days - lt.first_flag).astype("timedelta64[D]").astype(object),
                   strict=True))
    assert set(got) == {"early", "never", "window", "just_out", "same_day"}
    assert lt.churns == 5 and lt.tutors == 5 and lt.flagged == 3
    assert lt.share_flagged == pytest.approx(3 / 5)
    assert sorted(lt.leads.tolist()) == [0, 20, 49]
    assert got["never"] is None and got["just_out"] is None
    q1, med, q3 = lt.quartiles()
    assert (q1, med, q3) == pytest.approx((10.0, 20.0, 34.5))  # numpy's linear percentiles of 0, 20, 49
    # The end is exclusive and the start inclusive: moving the end before "window"'s churn drops it.
    shorter = lead_times(ids, days, levels, event, start=np.datetime64("2026-03-01T00:00"),
                         end=np.datetime64("2026-09-16T08:00"))
    assert "window" not in shorter.tutor_ids.tolist() and shorter.churns == 4


def test_a_flag_before_an_earlier_churn_does_not_warn_of_a_later_one() -> None:
    # Inactivity labels: the tutor churns on D+20, comes back on D+40 and churns again on D+70. Rows between
    # the churns are not at risk (event NaT). The High on D+10 warned of the first churn only.
    first = _rows("t", 0, 20, "2026-03-21T00:00", {10: "High"})
    gap = _rows("t", 21, 39, None, {25: "Critical"})
    second = _rows("t", 40, 70, "2026-05-10T00:00")
    lt = lead_times(*_stack(first, gap, second), start=np.datetime64("2026-03-01T00:00"),
                    end=np.datetime64("2026-06-01T00:00"))
    assert lt.churns == 2 and lt.tutors == 1 and lt.flagged == 1
    assert sorted(lt.churn_days.astype(str).tolist()) == ["2026-03-21", "2026-05-10"]
    assert lt.leads.tolist() == [10]


def test_lead_time_with_no_churn_is_empty_not_zero() -> None:
    ids, days, levels, event = _rows("stays", 0, 30, None, {5: "Critical"})
    lt = lead_times(ids, days, levels, event, start=np.datetime64("2026-03-01T00:00"),
                    end=np.datetime64("2026-04-01T00:00"))
    assert lt.churns == 0 and lt.flagged == 0 and math.isnan(lt.share_flagged)
    assert all(math.isnan(q) for q in lt.quartiles())
    with pytest.raises(ValueError, match="one entry per row"):
        lead_times(ids, days[:-1], levels, event, start=D, end=D + 30)


# --- a card for a really trained model ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    frame, truth = synthetic_world()
    segs = segments(frame, times_from(frame, truth))
    run = fit(segs, grid=GRID[:2])
    spec = active_scoring_rules(get_settings().rules_dir).spec
    path = write_card(run, segs, tmp_path_factory.mktemp("card") / "v1", rules_spec=spec, version="churn-test-v1",
                      label_source="truth")
    return path, path.read_text(encoding="utf-8"), run, segs, truth, spec


def test_card_has_every_section_and_says_what_the_model_is_for(card) -> None:  # noqa: ANN001
    path, text, run, segs, _, _ = card
    assert path.name == "card.md" and path.exists()
    for heading in ("# Churn model card: `churn-test-v1`", "## What the model is and is for", "## Data",
                    "## Temporal split", "## Model and why", "## Hyper-parameter search", "## Calibration",
                    "## Performance per horizon", "### Validation", "### Test", "## Feature importance",
                    "## Churn score distribution", "## Lead time", "## Limitations"):
        assert heading in text, heading
    assert "staff-only" in text and "Tutors never see it" in text
    assert "Label source: **truth**" in text
    assert f"Validation starts **{segs.split.val_start}**, test starts **{segs.split.test_start}**" in text
    assert f"| train | {segs.frame.days.min()} | {segs.split.val_start - 1} |" in text
    assert f"rows {run.counts['train']['rows']:,}, pieces {run.counts['train']['pieces']:,}" in text
    assert "P(1d) <= P(7d) <= P(30d) <= P(90d) for every tutor by construction" in text
    assert "rows at least 90 days older than the cut" in text
    assert f"Chosen: `{run.model.params}`" in text
    chosen = [line for line in text.splitlines() if line.endswith("**chosen** |") and "val_poisson_nll" not in line]
    assert any(f"| {run.model.params['max_depth']} | {run.model.params['learning_rate']} |" in line for line in chosen)
    assert f"Chosen: **{run.model.calibration}**" in text
    for words in ("Few churners", "one simulated world", "Correlated tutor-days"):
        assert words in text


_HEADERS = {"n": "n", "positives": "positives", "base rate": "base_rate", "AUC-ROC": "auc",
            "precision@10%": "precision_at_10", "lift@10%": "lift_at_10", "Brier": "brier",
            "Brier skill": "brier_skill", "ECE": "ece"}


def _table_after(text: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the first markdown table after ``heading``."""
    section = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("|"))
    block = list(takewhile(lambda line: line.startswith("|"), section[start:]))
    lines = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block]
    return lines[0], lines[2:]


def _close(shown: str, value: float) -> bool:
    if shown == "n/a":
        return math.isnan(value)
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown.replace(",", "")) - value) <= 0.5 * 10 ** -decimals + 1e-12


def test_table_numbers_are_the_evaluate_figures_and_a_missing_horizon_says_so(card) -> None:  # noqa: ANN001
    _, text, run, segs, _, _ = card
    names = {"XGBoost": "xgb", "LR baseline": "lr"}
    for segment, heading in ((1, "### Validation"), (2, "### Test")):
        figures = evaluate(run, segs, segment)
        header, rows = _table_after(text, heading)
        seen = set()
        for row in rows:
            horizon = row[0]
            if row[1] in names:
                report = figures[f"{names[row[1]]}_{horizon}"]
                for col, shown in zip(header[2:], row[2:], strict=True):
                    assert _close(shown, report[_HEADERS[col]]), (heading, horizon, row[1], col, shown)
                seen.add(f"{names[row[1]]}_{horizon}")
            else:  # a missing horizon: no figure at all in its row
                assert f"xgb_{horizon}" not in figures and set(row[2:]) == {"—"}
        assert seen == set(figures)
        # The synthetic world ends 60 days after validation starts: no 90-day window closes in either segment.
        assert "xgb_90d" not in figures and "xgb_1d" in figures
        segment_name = heading.split()[1].lower()
        assert f"**90-day horizon: missing** for {segment_name}" in text


def test_figures_exist_are_png_and_are_linked(card) -> None:  # noqa: ANN001
    path, text, *_ = card
    for name in FILES.values():
        png = path.parent / name
        assert png.read_bytes()[:8] == PNG, name
        pixels = imread(png)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert pixels.std() > 0.01, f"{name} is blank"
        assert f"]({name})" in text


def test_feature_importance_names_features_and_labels_the_piece_column(card) -> None:  # noqa: ANN001
    _, text, run, *_ = card
    gain = dict(_gain(run.model, run.model.names))
    assert set(gain) <= {*run.model.names, PIECE_LABEL} and set(gain) & set(run.model.names)
    assert not any(re.fullmatch(r"f\d+", k) for k in gain)
    header, rows = _table_after(text, "## Feature importance")
    assert header[:3] == ["rank", "feature", "mean abs SHAP"]
    # The synthetic world's churn is driven by feature "a" (a noisy reading of the latent risk).
    assert rows[0][1] == "`a`" and len(rows) == len(run.model.names)


def test_lead_time_section_counts_the_truths_churns(card) -> None:  # noqa: ANN001
    _, text, run, segs, truth, spec = card
    frame = segs.frame
    end = datetime.fromisoformat(str(frame.days.max() + 1)).replace(tzinfo=UTC)
    start = datetime.fromisoformat(str(frame.days.min())).replace(tzinfo=UTC)
    churned = {t: c for t, c in truth.churned_at.items() if c is not None and start <= c < end}
    # The flag of each churner by a plain loop over its rows, independent of ml/lead_time.py.
    levels = np.asarray(risk_levels(churn_scores(run.model.predict(frame.X), spec), spec), dtype=object)
    flagged_leads = []
    for t, c in churned.items():
        churn_day = np.datetime64(c.date(), "D")
        mine = np.flatnonzero((frame.tutor_ids == t) & (frame.days <= churn_day) & (frame.days >= churn_day - 90))
        hits = [frame.days[i] for i in mine if levels[i] in ("High", "Critical")]
        if hits:
            flagged_leads.append(int((churn_day - min(hits)).astype(int)))
    row = next(line for line in text.splitlines() if line.startswith("| all churns"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert int(cells[1].replace(",", "")) == len(churned) == int(cells[2].replace(",", ""))
    assert int(cells[3].replace(",", "")) == len(flagged_leads) > 0
    assert _close(cells[4], len(flagged_leads) / len(churned))
    assert _close(cells[5], float(np.median(flagged_leads)))


def test_a_calibrator_that_never_saw_a_horizon_is_flagged(card) -> None:  # noqa: ANN001
    _, text, run, segs, _, _ = card
    assert ("**Warning:**" in text) == (run.model.calibration != "none")
    # Force isotonic: validation here closes 1-, 7- and 30-day windows but no 90-day one.
    z, y, _ = calibration_set(run.model, segs)
    cal = CalibratedClassifierCV(FrozenEstimator(_HorizonScore()), method="isotonic").fit(z.reshape(-1, 1), y)
    forced = dataclasses.replace(run, model=dataclasses.replace(run.model, calibrated=cal, calibration="isotonic"))
    section = _calibration(forced, segs, forced.model.predict(segs.frame.X))
    assert "from the horizons 1d, 7d, 30d." in section
    assert "**Warning:** the calibrator saw no 90d label" in section
    assert "Highest probability on any row: 1d " in section and "(raw " in section
