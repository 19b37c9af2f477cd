"""The schema registry (docs/schema-registry.md): its wire format, its REST API, the schemas a dataset
spec's requests and answers are registered with, and the predictor's cache of them."""
