"""The guardrails of a trial: errors and scoring time beyond their limits reject a challenger at once."""

import pytest

from train.rollout.guardrails import ChallengerHealth, Guardrails, breach

LIMITS = Guardrails(max_error_rate=0.05, max_scoring_us=5000.0, min_requests=50)


@pytest.mark.parametrize(
    "asked, failed, scoring_us, limits, breached",
    [
        (100, 5, 200.0, LIMITS, False),  # 5%: at the limit, not beyond
        (100, 6, 200.0, LIMITS, True),
        (49, 49, None, LIMITS, False),  # too few asked to say
        (100, 0, 5001.0, LIMITS, True),
        (100, 0, None, LIMITS, False),  # no timing in the log (older predictors)
        (100, 0, 1e6, Guardrails(0.05, 0.0, 50), False),  # no time limit
        (100, 100, None, Guardrails(1.0, 0.0, 50), False),  # no error limit
        (0, 0, None, Guardrails(0.05, 5000.0, 0), False),  # nothing asked: no rate
    ],
)
def test_breaches(asked, failed, scoring_us, limits, breached):
    assert (breach(ChallengerHealth(asked, failed, scoring_us), limits) is not None) is breached


def test_the_error_rate_counts_the_requests_it_was_asked():
    assert ChallengerHealth(200, 10, None).error_rate == 0.05
    assert ChallengerHealth(0, 0, None).error_rate == 0.0
