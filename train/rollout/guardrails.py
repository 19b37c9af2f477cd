"""Guardrails of a trial: a challenger that fails to score too many requests, or scores them too
slowly, is rejected at once, whatever its labels say. Decided purely from the tally's figures.

Both figures come from the observations log like the pairs (train/rollout/tally.py): a predictor
marks each labelled request its challenger was asked to score and did not (`Observation.missed`:
the challenger raised, or its form refused the request), and gives each model's scoring time per
request of the batch (`Observation.scoring_us`). The time is the challenger's own LightGBM time
(a challenger is never compiled while on trial), so the limit is absolute, not relative to a
champion that may serve compiled and many times faster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ChallengerHealth:
    """What the tally says of the challenger besides its scores."""

    asked: int  # labelled requests it was asked to score
    failed: int  # of those, the ones it did not score (an error, or its form refused the request)
    scoring_us: float | None  # its mean scoring time per request over the ones it scored (None: unknown)

    @property
    def error_rate(self) -> float:
        return self.failed / self.asked if self.asked else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Guardrails:
    max_error_rate: float  # above it: rejected (1.0: never)
    max_scoring_us: float  # mean scoring time per request above it: rejected (0: no limit)
    min_requests: int  # asked at least this many before either guardrail applies


def breach(health: ChallengerHealth, guardrails: Guardrails) -> str | None:
    """Why the challenger must be rejected at once, or None."""
    if health.asked < guardrails.min_requests:
        return None
    if health.error_rate > guardrails.max_error_rate:
        return (
            f"the challenger failed to score {health.failed} of {health.asked} labelled requests "
            f"({health.error_rate:.1%}), above the limit {guardrails.max_error_rate:.1%}"
        )
    too_slow = health.scoring_us is not None and health.scoring_us > guardrails.max_scoring_us
    if guardrails.max_scoring_us > 0 and too_slow:
        return (
            f"the challenger took {health.scoring_us:.0f} us per request on average, above the limit "
            f"{guardrails.max_scoring_us:.0f} us"
        )
    return None
