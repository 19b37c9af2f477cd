"""The trainer's eye on the rollout in progress: keep its paired tally, judge it every few seconds,
end the trial once the judgement decides. A decision taken meanwhile by an operator (promote.py,
rollback.py) or interrupted by a crash is finished here too."""

from __future__ import annotations

import logging

from train.rollout.judgement import PROMOTE, WAIT
from train.rollout.sequential import judge_rollout
from train.rollout.tally import PairedTally
from train.rollout.trial import Ending, Trials
from utils import metrics
from utils.kafka.interface import KafkaError
from utils.messages.events import LIVE_JUDGEMENT, ChallengerStarted, RolloutDecided
from utils.settings import KafkaSettings, RolloutSettings

log = logging.getLogger(__name__)


class RolloutWatch:
    def __init__(self, trials: Trials, settings: RolloutSettings, kafka: KafkaSettings, topic: str, client_id: str):
        self.trials = trials
        self.settings = settings
        self.kafka = kafka
        self.topic = topic  # the observations log
        self.client_id = client_id
        self._tally: PairedTally | None = None

    def check(self) -> RolloutDecided | None:
        """Read the rollout's tally and, once it is large enough, decide; the decision, if one was
        carried out now."""
        rollout = self.trials.store.challenger()
        if rollout is None:
            self._drop_tally()
            return None
        if self.trials.store.metadata(rollout.version).rollout_decision is not None:
            return self._end(rollout, None)  # decided already: finish carrying it out
        tally = self._tally_of(rollout)
        try:
            tally.catch_up()
        except KafkaError as error:
            log.warning("rollout tally not read, trying again error=%r", error)
            return None
        labels, champion, challenger = tally.arrays()
        verdict = judge_rollout(labels, champion, challenger, tally.health(), self.settings.judgement)
        metrics.ROLLOUT_LABELLED.set(len(labels))
        metrics.ROLLOUT_LOG_LOSS_MARGIN.set(self.settings.judgement.log_loss_margin)
        judgement = verdict.judgement
        if judgement is not None and judgement.log_loss_difference is not None and judgement.pairs > 0:
            for bound in ("estimate", "low", "high"):
                metrics.ROLLOUT_LOG_LOSS_DIFFERENCE.labels(bound=bound).set(
                    getattr(judgement.log_loss_difference, bound)
                )
        if verdict.figures is not None:
            figures = verdict.figures
            metrics.ROLLOUT_LIVE_AUC.labels(role="champion").set(figures.champion["auc"])
            metrics.ROLLOUT_LIVE_AUC.labels(role="challenger").set(figures.challenger["auc"])
            for bound in ("estimate", "low", "high"):
                metrics.ROLLOUT_AUC_DIFFERENCE.labels(bound=bound).set(getattr(figures.auc_difference, bound))
        if verdict.decision == WAIT:
            return None
        ending = Ending(verdict.decision == PROMOTE, LIVE_JUDGEMENT, verdict.reason, verdict.figures, judgement)
        if judgement is not None:
            metrics.ROLLOUT_PAIRS_TO_DECISION.set(judgement.pairs)
        return self._end(rollout, ending)

    def _end(self, rollout: ChallengerStarted, ending: Ending | None) -> RolloutDecided:
        decided = self.trials.end(rollout, ending)
        metrics.ROLLOUT_DECISIONS.labels(decision="promoted" if decided.promoted else "rejected").inc()
        self._drop_tally()
        return decided

    def _tally_of(self, rollout: ChallengerStarted) -> PairedTally:
        if self._tally is None or self._tally.rollout != rollout:
            self._drop_tally()
            self._tally = PairedTally(self.kafka, self.topic, rollout, f"{self.client_id}-tally")
        return self._tally

    def _drop_tally(self) -> None:
        if self._tally is not None:
            self._tally.close()
            self._tally = None
            metrics.ROLLOUT_LABELLED.set(0)

    def close(self) -> None:
        self._drop_tally()
