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


def test_the_dashboard_shows_triggers_by_reason_and_the_running_judgement_of_a_rollout():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    by_metric = {
        name: panel["title"]
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\bpipeline_\w+", target["expr"])
    }
    for shown in (
        "pipeline_retrain_triggers_total",
        "pipeline_retrains_by_reason_total",
        "pipeline_rollout_log_loss_difference",
        "pipeline_rollout_log_loss_margin",
        "pipeline_rollout_pairs_to_decision",
    ):
        assert shown in by_metric, shown
    assert any("by (reason)" in t["expr"] for p in panels for t in p["targets"] if "retrain_triggers" in t["expr"])
    assert any("by (bound)" in t["expr"] for p in panels for t in p["targets"] if "log_loss_difference" in t["expr"])
    places = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels]
    assert len(places) == len(set(places)), "no two panels in the same place"


def test_prometheus_config_scrapes_both_services():
    config = (DASHBOARD.parent / "prometheus.yml").read_text()
    assert "127.0.0.1:8000" in config and "127.0.0.1:8001" in config


def collections_of(generation: int) -> float:
    return REGISTRY.get_sample_value("pipeline_gc_pause_seconds_count", {"generation": str(generation)}) or 0.0


def test_each_collection_of_the_garbage_collector_is_timed_once_by_generation():
    import gc

    from utils.metrics import GcPauseTimer, time_gc_pauses

    time_gc_pauses()
    time_gc_pauses()
    assert sum(isinstance(callback, GcPauseTimer) for callback in gc.callbacks) == 1
    before = [collections_of(generation) for generation in range(3)]
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    after = [collections_of(generation) for generation in range(3)]
    assert after[2] - before[2] == 2
    assert after[0] - before[0] >= 1  # and any the test's own allocations caused
