"""Rollouts: how a version that passed the holdout gate reaches traffic.

- `decision`: which version serves, decided purely from a version's metadata and the history
  (the holdout gate, whether a version goes on trial, whether it is made current);
- `judgement`: is a challenger worse than the champion on the paired live labels (pure);
- `tally`: the paired live labels, read back from the observations log;
- `trial`: starting and ending a trial (the store's CHALLENGER, the decision in the challenger's
  metadata, the announcements, MLflow); the trainer, promote.py and rollback.py all end trials here.

Making a version current is `train/champion.py`'s job alone.
"""
