"""Every PromQL expression we ship -- recording rules, alerts, dashboard
panels and variables, Grafana's trace-to-metrics queries -- uses only metric
names the instrumentation emits after Prometheus' translation (or a
recording rule's own name) and only the contract's labels plus job, instance
and le. promtool checks that the dashboard's queries parse."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.collector_config.collector_checks import (
    CONFIG_DIR,
    CONTRACT_LABELS,
    CONTRACT_METRICS,
    TARGET_LABELS,
    grafana_to_promql,
    load_yaml,
    promql_names,
    split_label_values,
)

RULE_FILES = sorted((CONFIG_DIR / "prometheus" / "rules").glob("*.yml"))


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


RECORDED = frozenset(rule["record"] for rule in _rules() if "record" in rule)


def _rule_expressions() -> list[tuple[str, str]]:
    return [(rule.get("record") or rule["alert"], rule["expr"]) for rule in _rules()]


def _dashboard_expressions(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for name, dashboard in dashboards.items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                if (
                    target.get("datasource", panel.get("datasource", {})).get("type")
                    == "prometheus"
                ):
                    found.append((f"{name}: {panel['title']} {target['refId']}", target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("datasource", {}).get("type") == "prometheus":
                selector, label = split_label_values(variable["definition"])
                assert label in CONTRACT_LABELS | TARGET_LABELS, (
                    f"{name}: variable {variable['name']}"
                )
                found.append((f"{name}: variable {variable['name']}", selector))
    return found


def _datasource_expressions(datasources: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for ds in datasources:
        for query in (ds.get("jsonData", {}).get("tracesToMetrics") or {}).get("queries", []):
            # $$ is Grafana provisioning's escaped $.
            found.append(
                (f"{ds['name']} tracesToMetrics {query['name']}", query["query"].replace("$$", "$"))
            )
    return found


@pytest.fixture(scope="module")
def all_expressions(
    dashboards: dict[str, dict[str, Any]], datasources: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    return (
        _rule_expressions()
        + _dashboard_expressions(dashboards)
        + _datasource_expressions(datasources)
    )


def test_there_is_something_to_check(all_expressions: list[tuple[str, str]]) -> None:
    assert len(_rule_expressions()) >= 15
    assert len(all_expressions) > len(_rule_expressions()) + 15


def test_metric_names_are_the_contracts_or_recorded(all_expressions: list[tuple[str, str]]) -> None:
    unknown = {}
    for where, expr in all_expressions:
        metrics, _ = promql_names(expr)
        assert metrics, f"{where}: no metric in {expr!r}"
        if metrics - CONTRACT_METRICS - RECORDED:
            unknown[where] = sorted(metrics - CONTRACT_METRICS - RECORDED)
    assert unknown == {}


def test_label_names_are_the_contracts(all_expressions: list[tuple[str, str]]) -> None:
    unknown = {}
    for where, expr in all_expressions:
        _, labels = promql_names(expr)
        extra = (
            {name for name in labels if not name.startswith("$")} - CONTRACT_LABELS - TARGET_LABELS
        )
        if extra:
            unknown[where] = sorted(extra)
    assert unknown == {}, "group by job/instance and the contract's labels (never service_name)"


def test_recording_rules_follow_the_naming_convention() -> None:
    for name in RECORDED:
        level, metric, operation = name.split(":")
        assert level.startswith("job") and operation
        assert metric.startswith(("email_client_", "email_delivery_")), name


def test_alerts_build_on_recording_rules_that_exist() -> None:
    for rule in _rules():
        metrics, _ = promql_names(rule["expr"])
        for name in metrics:
            assert ":" not in name or name in RECORDED, (
                f"{rule.get('alert') or rule['record']}: {name}"
            )


@pytest.mark.parametrize(
    ("expr", "metrics", "labels"),
    [
        (
            'sum by (job) (rate(email_client_sent_messages_total{error_type=""}[5m]))',
            {"email_client_sent_messages_total"},
            {"job", "error_type"},
        ),
        (
            'histogram_quantile(0.95, sum by (le) (rate(x_bucket{a=~"$v"}[$__rate_interval])))',
            {"x_bucket"},
            {"a", "le"},
        ),
        ("a:b:c < 0.95 and on (job) d * 300 >= 10", {"a:b:c", "d"}, {"job"}),
        ("sum(increase(m[1h] offset 1w)) >= 1e3 unless on(job) n > bool 0", {"m", "n"}, {"job"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}, set()),
    ],
)
def test_promql_scanner(expr: str, metrics: set[str], labels: set[str]) -> None:
    assert promql_names(expr) == (metrics, labels)


def test_dashboard_queries_parse(
    promtool: str,
    tmp_path: Path,
    dashboards: dict[str, dict[str, Any]],
    datasources: list[dict[str, Any]],
) -> None:
    """promtool check rules on a throwaway rule file holding every dashboard
    query (with Grafana's variables filled in) as a recording rule."""
    expressions = _dashboard_expressions(dashboards) + _datasource_expressions(datasources)
    rules = []
    for index, (where, expr) in enumerate(expressions):
        promql = grafana_to_promql(expr)
        assert "$" not in promql, f"{where}: unresolved variable in {promql!r}"
        rules.append({"record": f"dashboard:query_{index}:check", "expr": promql})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8"
    )
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
