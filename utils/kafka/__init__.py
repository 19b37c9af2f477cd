"""Kafka behind the project's own small interface (`interface.py`), with one adapter per client
library. Services build clients here, from their settings, and never import a library directly."""
