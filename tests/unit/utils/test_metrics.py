"""The Grafana dashboard only queries metrics the services actually export."""

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import utils.metrics  # noqa: F401  (registers the pipeline's metrics)

DASHBOARD = Path(__file__).resolve().parents[3] / "monitoring" / "grafana-dashboard.json"
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def exported_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("pipeline_"):
            names.add(family.name)
            names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def test_every_dashboard_metric_is_exported():
    exprs = [t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bpipeline_\w+", expr)}
    assert len(used) >= 15
    missing = used - exported_names()
    assert not missing, f"dashboard uses metrics nobody exports: {sorted(missing)}"


def test_prometheus_config_scrapes_both_services():
    config = (DASHBOARD.parent / "prometheus.yml").read_text()
    assert "127.0.0.1:8000" in config and "127.0.0.1:8001" in config
