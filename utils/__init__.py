"""Runtime code shared by the services: settings, messages, Kafka I/O, features, model store."""
