"""How often the drift and quality retrain triggers fire on a stream that has not moved (false
alarms), and how many requests they take to fire on one that has (predict/retrain_triggers.py).

A real Adult version (40 trees on 8,000 rows of adult.data, 2,000 holdout rows as its reference, as
every version stores them) judges streams drawn with replacement from the other half of adult.test,
the rows the sample app sends. The judgements run as in the predictor: every window / 10 requests,
on the last `window` requests (labelled ones for quality), from the first full window on. A window
of the unshifted stream "false-alarms" when any judgement that ends inside it fires.

    python -m benchmarks.triggers                  # 200 windows of 1,000 requests, about a minute
    python -m benchmarks.triggers --windows 50 --window 500
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np
import pandas as pd

from predict.retrain_triggers import (
    ServingVersion,
    TriggerSettings,
    drift_trigger,
    log_losses,
    quality_trigger,
    window_drift,
)
from train.pipeline import fixed_rounds_files
from utils.data import TARGET, Dataset, default_spec, frame_to_records, labels_of, load_dataset
from utils.scoring import Scorer, scorer_from_files

DRIFT_THRESHOLDS = (0.1, 0.2)
QUALITY_MARGINS = (0.02, 0.05)


def served(adult: Dataset) -> tuple[Scorer, ServingVersion]:
    files = fixed_rounds_files(adult.spec, adult.training.head(8000), adult.holdout, 40, reference_rows=2000)
    scorer = scorer_from_files(1, files)
    assert scorer.reference is not None
    holdout = scorer.predict_proba(frame_to_records(adult.holdout, adult.spec))
    serving = ServingVersion(
        1,
        adult.spec,
        pd.DataFrame.from_records(list(scorer.reference.records)),
        scorer.reference.scores,
        float(np.mean(log_losses(holdout, labels_of(adult.holdout)))),
    )
    return scorer, serving


def judgements(
    scorer: Scorer, serving: ServingVersion, rows: pd.DataFrame, window: int, quality: bool
) -> list[tuple[int, float]]:
    """At every judgement (its request count): the largest PSI (fields and scores), or with
    `quality` the one-sided lower bound of the live log loss."""
    records = frame_to_records(rows, serving.spec)
    scores = scorer.predict_proba(records)
    losses = log_losses(scores, labels_of(rows))
    stride = TriggerSettings(window=window).stride
    found = []
    for end in range(window, len(rows) + 1, stride):
        if quality:
            trigger = quality_trigger(
                losses[end - window : end], -1e9, TriggerSettings(quality_margin=1e-9, window=window)
            )
            found.append((end, float(trigger.evidence["lower_bound"]) if trigger else float("nan")))
        else:
            features, score_psi = window_drift(serving, records[end - window : end], scores[end - window : end])
            worst = drift_trigger(features, score_psi, window, TriggerSettings(drift_psi=1e-12, window=window))
            found.append((end, float(worst.evidence["psi"]) if worst else 0.0))
    return found


def false_alarms(figures: list[tuple[int, float]], window: int, fires: Callable[[float], bool]) -> float:
    """Share of the stream's windows in which a judgement fired."""
    windows = {(end - 1) // window for end, figure in figures if fires(figure)}
    return len(windows) / max(1, figures[-1][0] // window)


def first_firing(figures: list[tuple[int, float]], fires: Callable[[float], bool], start: int) -> str:
    after = [end - start for end, figure in figures if end > start and fires(figure)]
    return str(after[0]) if after else "never"


def above(limit: float) -> Callable[[float], bool]:
    return lambda figure: figure > limit


def draw(frame: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=count, replace=True, random_state=seed).reset_index(drop=True)


def flipped(frame: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    part = np.random.default_rng(seed).random(len(frame)) < share
    out = frame.copy()
    out.loc[part, TARGET] = 1 - out.loc[part, TARGET]
    return out


SHIFTS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "age + 10": lambda frame: frame.assign(age=frame["age"] + 10),
    "age + 3": lambda frame: frame.assign(age=frame["age"] + 3),
    "executives only": lambda frame: frame[frame["occupation"] == "Exec-managerial"],
    "hours_per_week + 5": lambda frame: frame.assign(hours_per_week=frame["hours_per_week"] + 5),
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=200, help="windows of the unshifted stream")
    parser.add_argument("--window", type=int, default=1000, help="requests per window (--retrain-window)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    adult = load_dataset(default_spec())
    scorer, serving = served(adult)
    window = args.window
    assert serving.holdout_log_loss is not None
    print(f"holdout log loss {serving.holdout_log_loss:.4f}; window {window}; judgements every {window // 10}")

    unshifted = draw(adult.stream, args.windows * window, args.seed)
    drift = judgements(scorer, serving, unshifted, window, quality=False)
    psis = np.array([figure for _, figure in drift])
    print(f"\nunshifted, {args.windows} windows, {len(drift)} drift judgements:")
    print(
        f"  largest PSI per judgement: median {np.median(psis):.3f}, 99th pct {np.quantile(psis, 0.99):.3f}, "
        f"max {psis.max():.3f}"
    )
    for threshold in DRIFT_THRESHOLDS:
        rate = false_alarms(drift, window, above(threshold))
        print(f"  drift false alarms at PSI > {threshold}: {rate:.3f} of windows")
    quality = judgements(scorer, serving, unshifted, window, quality=True)
    bounds = np.array([figure for _, figure in quality])
    print(
        f"  live log-loss lower bound minus holdout: median {np.median(bounds) - serving.holdout_log_loss:+.4f}, "
        f"max {bounds.max() - serving.holdout_log_loss:+.4f}"
    )
    for margin in QUALITY_MARGINS:
        limit = serving.holdout_log_loss + margin
        rate = false_alarms(quality, window, above(limit))
        print(f"  quality false alarms at margin {margin}: {rate:.3f} of windows")

    print("\nshifted after 2 windows: requests after the shift to the first firing")
    before = draw(adult.stream, 2 * window, args.seed + 1)
    for name, shift in SHIFTS.items():
        rows = pd.concat([before, draw(shift(adult.stream), 3 * window, args.seed + 2)], ignore_index=True)
        figures = judgements(scorer, serving, rows, window, quality=False)
        cells = [f"PSI > {t}: {first_firing(figures, above(t), len(before))}" for t in DRIFT_THRESHOLDS]
        print(f"  drift, {name}: " + ", ".join(cells))
    for share in (0.1, 0.3):
        rows = pd.concat([before, flipped(draw(adult.stream, 3 * window, args.seed + 3), share, args.seed)])
        figures = judgements(scorer, serving, rows.reset_index(drop=True), window, quality=True)
        cells = [
            f"margin {m}: {first_firing(figures, above(serving.holdout_log_loss + m), len(before))}"
            for m in QUALITY_MARGINS
        ]
        print(f"  quality, labels flipped on {share:.0%}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
