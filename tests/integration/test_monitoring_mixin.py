"""The committed dashboard and rule files are exactly what the mixin renders,
and they are complete: units, datasources, naming, runbook links, docs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from ab_router.statistics.psi import (
    DRIFT_MIN_REQUESTS,
    PSI_CRITICAL_THRESHOLD,
    PSI_WARNING_THRESHOLD,
)
from tests.support.prometheus_server import (
    DASHBOARD_FILE,
    MIXIN_DIR,
    REPO_ROOT,
    RULE_FILES,
    RULES_DIR,
    concrete_dashboard_expr,
    dashboard_targets,
    render_dashboards,
    render_rules,
    rules_of,
)

PROVISIONING = REPO_ROOT / "grafana" / "provisioning"
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
METRICS_DOC = REPO_ROOT / "docs" / "metrics.md"

# The metric contract (docs/metrics.md documents the same list).
CONTRACT_METRICS = {
    "predictions_total",
    "prediction_latency_seconds",
    "churn_predictions_total",
    "churn_ab_requests_total",
    "churn_ab_assignments_total",
    "churn_ab_fallbacks_total",
    "churn_ab_errors_total",
    "churn_ab_feedback_total",
    "churn_ab_shadow_scores_total",
    "churn_ab_batch_size",
    "churn_ab_model_inference_seconds",
    "churn_ab_metrics_self_check",
    "churn_ab_metrics_writers",
    "churn_ab_metrics_expected_writers",
    "churn_ab_rate_limited_total",
    "churn_ab_variant_weight_ratio",
    "churn_ab_canary_stage",
    "churn_ab_canary_rollbacks_total",
    "churn_ab_srm_p_value",
    "churn_ab_variant_brier_score",
    "churn_ab_variant_roc_auc",
    "churn_ab_labelled_exposures",
    "churn_ab_experiment_info",
    "churn_ab_experiment_epoch",
    "churn_ab_model_info",
    "churn_ab_model_up",
    "churn_ab_mixed_models",
    "churn_ab_feature_psi",
    "churn_ab_score_psi",
    "churn_ab_drift_window_requests",
    "churn_ab_concept_window_labels",
    "churn_ab_concept_window_brier_score",
    "churn_ab_concept_window_roc_auc",
    "churn_ab_model_heldout_brier_score",
    "churn_ab_model_heldout_roc_auc",
    "churn_ab_concept_drift",
}
PROMQL_WORDS = {
    "sum", "min", "max", "by", "on", "without", "rate", "increase", "unless",
    "and", "or", "histogram_quantile", "label_replace", "group_left", "le",
}  # fmt: skip


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def recording_rules() -> list[dict[str, Any]]:
    return rules_of(RULES_DIR / "churn-ab.rules.yml")


@pytest.fixture(scope="module")
def alerts() -> list[dict[str, Any]]:
    return rules_of(RULES_DIR / "churn-ab.alerts.yml")


def test_committed_files_equal_a_fresh_render(tmp_path: Path) -> None:
    rendered = render_rules(tmp_path / "rules") + render_dashboards(tmp_path / "dash")
    committed = [RULES_DIR / name for name in RULE_FILES] + [DASHBOARD_FILE]
    assert sorted(p.name for p in rendered) == sorted(p.name for p in committed)
    for fresh in rendered:
        stale = next(p for p in committed if p.name == fresh.name)
        assert stale.read_text() == fresh.read_text(), (
            f"{stale.relative_to(REPO_ROOT)} is stale: "
            "run `make -f grafana/mixin.mk monitoring`"
        )


def test_jsonnet_sources_are_formatted() -> None:
    sources = sorted(MIXIN_DIR.rglob("*.*sonnet"))
    assert sources
    result = subprocess.run(
        ["jsonnetfmt", "--test", *map(str, sources)], capture_output=True, text=True
    )
    assert result.returncode == 0, (
        f"run `make -f grafana/mixin.mk fmt-monitoring`: {result.stdout}{result.stderr}"
    )


def test_config_override_changes_windows_and_names(tmp_path: Path) -> None:
    rules, alerts_file = render_rules(tmp_path, {"rateWindow": "30s"})
    records = {r["record"]: r["expr"] for r in rules_of(rules)}
    assert "model_version:predictions:rate30s" in records
    assert "model_version:prediction_latency_seconds:p95_30s" in records
    assert all("[5m]" not in expr for expr in records.values())
    alert_exprs = " ".join(a["expr"] for a in rules_of(alerts_file))
    assert "p95_30s" in alert_exprs and "p95_5m" not in alert_exprs


def test_dashboard_identity_and_templating(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "churn-ab-overview"
    assert dashboard["title"] == "churn A/B overview"
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["job", "instance"]


def test_every_panel_has_unit_datasource_and_targets(dashboard: dict[str, Any]) -> None:
    datasource_uid = yaml.safe_load(
        (PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]["uid"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        title = panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), title
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource_uid}
        assert panel["targets"], title
        for target in panel["targets"]:
            assert target["expr"].strip(), title
            assert target["datasource"]["uid"] == datasource_uid, title
        refids = [t["refId"] for t in panel["targets"]]
        assert len(refids) == len(set(refids)), title
        assert (
            0
            <= panel["gridPos"]["x"]
            < panel["gridPos"]["x"] + panel["gridPos"]["w"]
            <= 24
        ), title


def test_dashboard_filters_on_its_template_variables(dashboard: dict[str, Any]) -> None:
    for title, _, expr in dashboard_targets(dashboard):
        selectors = re.findall(r"\{([^}]*)\}", expr)
        assert selectors, title
        for sel in selectors:
            assert 'job=~"$job"' in sel and 'instance=~"$instance"' in sel, title


def test_dashboard_keeps_the_original_latency_promql_style(
    dashboard: dict[str, Any],
) -> None:
    exprs = {expr for _, _, expr in dashboard_targets(dashboard)}
    original = re.compile(
        r"^histogram_quantile\(0\.95, sum by \(le, model_version\) "
        r"\(rate\(prediction_latency_seconds_bucket\{[^}]*\}\[\$__rate_interval\]\)\)\)$"
    )
    assert any(original.match(e) for e in exprs)


def test_concrete_expr_substitution_refuses_leftovers() -> None:
    expr = 'rate(x{job=~"$job", instance=~"$instance"}[$__rate_interval])'
    assert (
        concrete_dashboard_expr(expr, "30s", {"job": "churn-ab", "instance": ".+"})
        == 'rate(x{job=~"churn-ab", instance=~".+"}[30s])'
    )
    with pytest.raises(ValueError, match="instance"):
        concrete_dashboard_expr(expr, "30s", {"job": "churn-ab"})


def test_recording_rule_names_follow_level_metric_operations(
    recording_rules: list[dict[str, Any]],
) -> None:
    names = [r["record"] for r in recording_rules]
    assert len(names) == len(set(names))
    for rule in recording_rules:
        level, metric, operations = rule["record"].split(":")
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", level), rule["record"]
        # Rated counters drop _total; the window ends the operations. A gauge
        # aggregated over instances has no window: the aggregation is its
        # operation.
        assert not metric.endswith("_total"), rule["record"]
        windowed = "[" in rule["expr"] or re.search(r":\w*5m\b", rule["expr"])
        if windowed:
            assert operations.endswith("5m"), rule["record"]
        else:
            assert operations in {"max", "min", "sum"}, rule["record"]
        # Every label of the level is kept by the aggregation.
        for label in level.split("_"):
            if label in {"model", "version"}:
                label = "model_version"
            assert label in rule["expr"], (label, rule["record"])


def test_every_alert_is_complete_and_has_a_runbook_section(
    alerts: list[dict[str, Any]],
) -> None:
    runbook = RUNBOOK.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbook, flags=re.M)
    }
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names))
    for alert in alerts:
        name = alert["alert"]
        assert re.fullmatch(r"\d+[smh]", alert["for"]), name
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        annotations = alert["annotations"]
        assert annotations["summary"].strip(), name
        assert "{{ $labels." in annotations["description"], name
        path, anchor = annotations["runbook_url"].split("#")
        assert path == "docs/runbook.md", name
        assert anchor in headings, f"{name}: no '{anchor}' heading in the runbook"


def test_every_alert_has_a_quiet_and_a_firing_promtool_case(
    alerts: list[dict[str, Any]],
) -> None:
    cases: dict[str, list[bool]] = {}
    for test_file in (REPO_ROOT / "prometheus" / "tests").glob("*.yml"):
        for test in yaml.safe_load(test_file.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], []).append(bool(case["exp_alerts"]))
    for alert in alerts:
        outcomes = cases.get(alert["alert"], [])
        assert True in outcomes and False in outcomes, alert["alert"]


def _metric_names(expr: str) -> set[str]:
    names = set()
    for word in re.findall(r"(?<![\w$:\"])([a-z_][a-z0-9_:]*)\s*[{\[]", expr):
        if ":" in word or word in PROMQL_WORDS:
            continue
        names.add(re.sub(r"_(bucket|sum|count)$", "", word))
    return names


def test_only_contract_metrics_are_queried_and_all_are_documented(
    dashboard: dict[str, Any],
    recording_rules: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
) -> None:
    exprs = [e for _, _, e in dashboard_targets(dashboard)]
    exprs += [r["expr"] for r in recording_rules + alerts]
    used = set().union(*map(_metric_names, exprs))
    assert used - {"up"} <= CONTRACT_METRICS, used - CONTRACT_METRICS
    # The dashboard shows every metric of the contract.
    assert (
        set().union(*(_metric_names(e) for _, _, e in dashboard_targets(dashboard)))
        >= CONTRACT_METRICS
    )
    documented = set(re.findall(r"^\| `([a-z_]+)`", METRICS_DOC.read_text(), re.M))
    assert documented >= CONTRACT_METRICS, CONTRACT_METRICS - documented


def test_compose_prometheus_and_grafana_provisioning_agree_with_the_mixin(
    alerts: list[dict[str, Any]],
) -> None:
    prometheus = yaml.safe_load(
        (REPO_ROOT / "prometheus" / "prometheus.yml").read_text()
    )
    jobs = {c["job_name"]: c for c in prometheus["scrape_configs"]}
    targets = jobs["churn-ab"]["static_configs"][0]["targets"]
    assert targets == ["churn-ab:3000"]
    # The alerts select the job the compose Prometheus scrapes.
    target_down = next(a for a in alerts if a["alert"] == "ChurnAbTargetDown")
    assert target_down["expr"] == 'up{job="churn-ab"} == 0'
    assert sorted(prometheus["rule_files"]) == sorted(f"rules/{n}" for n in RULE_FILES)

    datasource = yaml.safe_load(
        (PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (PROVISIONING / "dashboards" / "churn-ab.yml").read_text()
    )["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/churn-ab"


def test_the_experiment_page_reads_psi_with_the_alerts_thresholds() -> None:
    """The page's drift status and the PSI alerts use the same numbers."""
    config = json.loads(
        subprocess.run(
            [
                "jsonnet",
                "-J",
                str(MIXIN_DIR),
                "-e",
                "(import 'mixin.libsonnet')._config",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )
    assert config["psiWarningThreshold"] == PSI_WARNING_THRESHOLD
    assert config["psiCriticalThreshold"] == PSI_CRITICAL_THRESHOLD
    assert config["driftMinRequests"] == DRIFT_MIN_REQUESTS
