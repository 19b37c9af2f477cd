"""The payload of every topic, as small typed classes that producers and consumers share.

- `codec`: bytes <-> JSON objects, and `MessageError`, the one error decoding raises;
- `requests`: the request/answer conversation of the app (`app_messages`, `predictions`), the
  observations kept for retraining and the dead letters;
- `events`: what services tell each other on the retrain and model-events topics.
"""
