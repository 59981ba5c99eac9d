"""Every YAML and JSON file under collector-config/ parses, and a key given
twice in one mapping is an error rather than a silent override."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.collector_config.collector_checks import (
    CONFIG_DIR,
    DuplicateKeyError,
    load_json,
    load_json_text,
    load_yaml,
    load_yaml_text,
)

YAML_FILES = sorted(p for p in CONFIG_DIR.rglob("*") if p.suffix in (".yaml", ".yml"))
JSON_FILES = sorted(CONFIG_DIR.rglob("*.json"))


def _name(path: Path) -> str:
    return str(path.relative_to(CONFIG_DIR))


def test_the_expected_files_are_there() -> None:
    names = {_name(p) for p in YAML_FILES + JSON_FILES}
    for expected in (
        "otel-collector.yaml",
        "otel-collector-gateway.yaml",
        "otel-collector.agent-loadbalancing.yaml",
        "otel-collector.logs-elasticsearch.yaml",
        "otel-collector.logs-splunk-hec.yaml",
        "docker-compose.yaml",
        "jaeger/config.yaml",
        "loki/config.yaml",
        "prometheus/prometheus.yml",
        "grafana/provisioning/dashboards/email.yaml",
        "grafana/provisioning/datasources/datasources.yaml",
        "grafana/dashboards/email-delivery.json",
    ):
        assert expected in names


@pytest.mark.parametrize("path", YAML_FILES, ids=_name)
def test_yaml_file_parses_without_duplicate_keys(path: Path) -> None:
    document = load_yaml(path)
    assert isinstance(document, dict) and document, f"{_name(path)} is empty or not a mapping"


@pytest.mark.parametrize("path", JSON_FILES, ids=_name)
def test_json_file_parses_without_duplicate_keys(path: Path) -> None:
    assert isinstance(load_json(path), dict)


def test_yaml_loader_rejects_a_duplicate_key() -> None:
    with pytest.raises(DuplicateKeyError, match="duplicate key 'exporters'"):
        load_yaml_text("exporters: {a: 1}\nprocessors: {}\nexporters: {b: 2}\n")
    with pytest.raises(DuplicateKeyError, match="duplicate key 'endpoint'"):
        load_yaml_text("otlp:\n  endpoint: a\n  tls: {}\n  endpoint: b\n")


def test_yaml_loader_allows_merge_keys_to_be_overridden() -> None:
    document = load_yaml_text(
        "base: &b {image: x, restart: always}\nsvc:\n  <<: *b\n  restart: 'no'\n"
    )
    assert document["svc"] == {"image": "x", "restart": "no"}


def test_yaml_loader_is_safe() -> None:
    with pytest.raises(yaml.constructor.ConstructorError):
        load_yaml_text("!!python/object/apply:os.system ['true']")


def test_json_loader_rejects_a_duplicate_key() -> None:
    with pytest.raises(ValueError, match="duplicate key 'uid'"):
        load_json_text('{"uid": "a", "title": "t", "uid": "b"}')
