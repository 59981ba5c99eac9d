"""Structure of the collector configurations: the base agent, each variant
merged over it as the collector merges `--config` files, the gateway, and
Jaeger's (which is a collector build too)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.collector_config.collector_checks import (
    BASE_CONFIG,
    COLLECTOR_VERSION,
    GATEWAY_CONFIG,
    JAEGER_CONFIG,
    JAEGER_TYPES,
    VARIANT_CONFIGS,
    collector_unescape,
    component_type,
    escape_problems,
    exporter_problems,
    health_check_problems,
    load_variant,
    load_yaml,
    merge_configs,
    naming_problems,
    pipeline_problems,
)


@dataclass(frozen=True)
class Checked:
    cfg: dict[str, Any]
    masks: bool  # an agent masks addresses itself; gateways receive masked data
    overlay: bool  # merged over the base: what it stops using it cannot delete


# The overlays leave components of the base unused (the Elasticsearch variant
# the Loki exporter, the agent-loadbalancing one the span_metrics connector
# and the Jaeger exporter); the collector ignores declared, unused components.
CONFIGS: dict[str, Checked] = {
    BASE_CONFIG.name: Checked(load_yaml(BASE_CONFIG), masks=True, overlay=False),
    GATEWAY_CONFIG.name: Checked(load_yaml(GATEWAY_CONFIG), masks=False, overlay=False),
    **{
        f"{BASE_CONFIG.name} + {p.name}": Checked(load_variant(p), masks=True, overlay=True)
        for p in VARIANT_CONFIGS
    },
}


@pytest.fixture(params=list(CONFIGS))
def checked(request: pytest.FixtureRequest) -> Checked:
    return CONFIGS[request.param]


def test_every_variant_file_is_checked() -> None:
    names = {p.name for p in VARIANT_CONFIGS}
    assert names == {
        "otel-collector.agent-loadbalancing.yaml",
        "otel-collector.logs-elasticsearch.yaml",
        "otel-collector.logs-splunk-hec.yaml",
        "otel-collector.receiver-tls.yaml",
    }


def test_pipelines_name_only_declared_components(checked: Checked) -> None:
    assert pipeline_problems(checked.cfg, allow_unused=checked.overlay) == []


def test_component_names_are_those_of_the_pinned_release(checked: Checked) -> None:
    assert naming_problems(checked.cfg) == []


def test_exporters_queue_on_disk_and_retry(checked: Checked) -> None:
    assert exporter_problems(checked.cfg) == []


def test_health_check_listens_on_13133(checked: Checked) -> None:
    assert health_check_problems(checked.cfg) == []


def test_every_dollar_is_escaped_or_an_env_reference(checked: Checked) -> None:
    assert escape_problems(checked.cfg) == []


def test_otlp_receivers_listen_on_all_interfaces(checked: Checked) -> None:
    protocols = checked.cfg["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "0.0.0.0:4317"
    if "http" in protocols:
        assert protocols["http"]["endpoint"] == "0.0.0.0:4318"


@pytest.mark.parametrize("name", [name for name, c in CONFIGS.items() if c.masks])
def test_agents_mask_addresses_in_every_pipeline(name: str) -> None:
    for pipeline_id, pipeline in CONFIGS[name].cfg["service"]["pipelines"].items():
        types = [component_type(p) for p in pipeline["processors"]]
        assert "redaction" in types, f"{pipeline_id} has no redaction processor"
        if component_type(pipeline_id) == "logs":
            assert "transform" in types, f"{pipeline_id} does not mask log bodies"


def test_merge_replaces_lists_and_merges_maps() -> None:
    base = {"a": {"x": 1, "l": [1, 2]}, "b": [1]}
    overlay = {"a": {"y": 2, "l": [3]}, "c": 3}
    assert merge_configs(base, overlay) == {"a": {"x": 1, "y": 2, "l": [3]}, "b": [1], "c": 3}
    assert base == {"a": {"x": 1, "l": [1, 2]}, "b": [1]}  # inputs untouched


def test_base_routes_each_signal_to_its_backend(base_config: dict[str, Any]) -> None:
    exporters = base_config["exporters"]
    assert exporters["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    assert exporters["otlp_http/prometheus"]["endpoint"] == "http://prometheus:9090/api/v1/otlp"
    assert exporters["otlp_http/loki"]["endpoint"] == "http://loki:3100/otlp"
    pipelines = base_config["service"]["pipelines"]
    assert "otlp_grpc/jaeger" in pipelines["traces"]["exporters"]
    assert pipelines["metrics"]["exporters"] == ["otlp_http/prometheus"]
    assert pipelines["logs"]["exporters"] == ["otlp_http/loki"]


def test_base_computes_span_metrics_for_jaegers_monitor_tab(base_config: dict[str, Any]) -> None:
    pipelines = base_config["service"]["pipelines"]
    assert "span_metrics" in pipelines["traces"]["exporters"]
    assert "span_metrics" in pipelines["metrics"]["receivers"]
    jaeger = load_yaml(JAEGER_CONFIG)
    backend = jaeger["extensions"]["jaeger_storage"]["metric_backends"]["span_metrics_store"][
        "prometheus"
    ]
    assert backend["endpoint"] == "http://prometheus:9090"
    assert backend["metric_namespace"] == "traces_span_metrics"


@pytest.mark.parametrize(
    ("variant", "exporter"),
    [
        ("otel-collector.logs-elasticsearch.yaml", "elasticsearch/logs"),
        ("otel-collector.logs-splunk-hec.yaml", "splunk_hec/logs"),
    ],
)
def test_log_store_variants_swap_only_the_logs_exporter(
    base_config: dict[str, Any], variant: str, exporter: str
) -> None:
    merged = load_variant(BASE_CONFIG.parent / variant)
    base_pipelines, pipelines = base_config["service"]["pipelines"], merged["service"]["pipelines"]
    assert pipelines["logs"]["exporters"] == [exporter]
    assert pipelines["logs"]["processors"] == base_pipelines["logs"]["processors"]
    assert pipelines["logs"]["receivers"] == base_pipelines["logs"]["receivers"]
    assert pipelines["traces"] == base_pipelines["traces"]
    assert pipelines["metrics"] == base_pipelines["metrics"]


def test_agent_variant_routes_traces_by_trace_id_to_the_gateways(
    base_config: dict[str, Any],
) -> None:
    merged = load_variant(BASE_CONFIG.parent / "otel-collector.agent-loadbalancing.yaml")
    pipelines = merged["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["load_balancing"]
    assert (
        pipelines["traces"]["processors"]
        == base_config["service"]["pipelines"]["traces"]["processors"]
    )
    # The gateways compute span metrics; the agent must not count them twice.
    assert "span_metrics" not in pipelines["metrics"]["receivers"]
    balancer = merged["exporters"]["load_balancing"]
    assert balancer["routing_key"] == "traceID"
    assert "endpoint" not in balancer["protocol"]["otlp"]
    assert balancer["resolver"]["dns"]["hostname"] == "otel-gateway"
    assert str(balancer["resolver"]["dns"]["port"]) == str(
        load_yaml(GATEWAY_CONFIG)["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(
            ":", 1
        )[1]
    )


def test_tls_variant_adds_tls_and_keeps_the_endpoints(base_config: dict[str, Any]) -> None:
    merged = load_variant(BASE_CONFIG.parent / "otel-collector.receiver-tls.yaml")
    for protocol, port in (("grpc", 4317), ("http", 4318)):
        settings = merged["receivers"]["otlp"]["protocols"][protocol]
        assert settings["endpoint"] == f"0.0.0.0:{port}"
        assert settings["tls"]["cert_file"] and settings["tls"]["key_file"]


def test_gateway_computes_span_metrics_before_sampling() -> None:
    gateway = load_yaml(GATEWAY_CONFIG)
    pipelines = gateway["service"]["pipelines"]
    sampled = [p for p in pipelines.values() if "tail_sampling" in p["processors"]]
    assert len(sampled) == 1
    unsampled_to_span_metrics = [
        pid
        for pid, p in pipelines.items()
        if "span_metrics" in p["exporters"] and "tail_sampling" not in p["processors"]
    ]
    assert unsampled_to_span_metrics, (
        "span_metrics must see the spans before tail_sampling drops any"
    )
    # Both trace pipelines take the same receiver, so span_metrics sees every span.
    assert {tuple(pipelines[pid]["receivers"]) for pid in unsampled_to_span_metrics} == {
        tuple(sampled[0]["receivers"])
    }


def test_gateway_keeps_errors_slow_traces_and_a_share_of_the_rest() -> None:
    policies = load_yaml(GATEWAY_CONFIG)["processors"]["tail_sampling"]["policies"]
    by_type = {p["type"]: p for p in policies}
    assert by_type["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert by_type["latency"]["latency"]["threshold_ms"] > 0
    assert 0 < by_type["probabilistic"]["probabilistic"]["sampling_percentage"] < 100
    assert not any(p["type"] == "drop" for p in policies)


def test_jaeger_config_is_a_consistent_collector_config() -> None:
    jaeger = load_yaml(JAEGER_CONFIG)
    assert naming_problems(jaeger, JAEGER_TYPES) == []
    assert pipeline_problems(jaeger) == []
    query_storage = jaeger["extensions"]["jaeger_query"]["storage"]
    storage = jaeger["extensions"]["jaeger_storage"]
    assert query_storage["traces"] in storage["backends"]
    assert query_storage["metrics"] in storage["metric_backends"]
    assert jaeger["exporters"]["jaeger_storage_exporter"]["trace_storage"] in storage["backends"]


def test_collector_files_name_the_pinned_release() -> None:
    for path in [BASE_CONFIG, GATEWAY_CONFIG, *VARIANT_CONFIGS]:
        assert COLLECTOR_VERSION in path.read_text(encoding="utf-8"), (
            f"{path.name} does not say which release"
        )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a$$b", "a$b"),
        ("^x$$", "^x$"),
        ("${env:TOKEN}", "${env:TOKEN}"),
        ("${env:IDX:-email}", "${env:IDX:-email}"),
        ("*@$${1}", "*@${1}"),
    ],
)
def test_collector_unescape(raw: str, expected: str) -> None:
    assert collector_unescape(raw) == expected


@pytest.mark.parametrize("raw", ["^x$", "${HOME}", "cost: $5"])
def test_collector_unescape_rejects_a_lone_dollar(raw: str) -> None:
    with pytest.raises(ValueError, match="unescaped"):
        collector_unescape(raw)


def test_checks_catch_broken_configurations() -> None:
    """The checks above would notice the mistakes they exist for."""
    broken = {
        "receivers": {"otlp": {}},
        "processors": {"memory_limiter": {}, "resourcedetection": {}},
        "exporters": {
            "loki": {},
            "otlphttp/x": {
                "endpoint": "http://loki:3100/otlp/v1/logs",
                "sending_queue": {"storage": "file_storage/q"},
            },
        },
        "connectors": {"span_metrics": {}},
        "extensions": {"file_storage/q": {}},
        "service": {
            "extensions": [],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["resourcedetection", "memory_limiter"],
                    "exporters": ["span_metrics", "otlp_grpc"],
                },
            },
        },
    }
    pipelines = "\n".join(pipeline_problems(broken))
    assert "memory_limiter must be the first processor" in pipelines
    assert "undeclared exporter 'otlp_grpc'" in pipelines
    assert (
        "connector 'span_metrics' must be an exporter in one pipeline and a receiver" in pipelines
    )
    exporters = "\n".join(exporter_problems(broken))
    assert "loki exporter was removed" in exporters
    assert "ends in /v1/<signal>" in exporters
    assert "is not in service.extensions" in exporters
    names = "\n".join(naming_problems(broken))
    assert "resource_detection (renamed in 0.153)" in names
    assert "otlp_http (renamed in 0.144)" in names
