"""Training code: tuning, evaluation, MLflow tracking, and the trainer service."""
