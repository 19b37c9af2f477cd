"""The predictor service: score every event, answer, hot-swap models."""
