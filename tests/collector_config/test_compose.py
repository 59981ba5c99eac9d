"""docker-compose files: pinned images of the right major versions, one
collector release everywhere, files that are mounted exist, and the data
safety defaults (ports on loopback, Loki unpublished, Grafana closed)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.collector_config.collector_checks import COLLECTOR_VERSION, CONFIG_DIR, load_yaml

PINNED = re.compile(r"^(?P<repo>[a-z0-9./_-]+):(?P<tag>v?\d+\.\d+\.\d+)$")
EXPECTED_MAJOR = {
    "otel/opentelemetry-collector-contrib": "0",
    "jaegertracing/jaeger": "2",
    "prom/prometheus": "v3",
    "grafana/loki": "3",
    "grafana/grafana": None,
    "busybox": None,
}


def _services(compose_files: dict[str, dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (file, name, service)
        for file, doc in compose_files.items()
        for name, service in (doc.get("services") or {}).items()
    ]


def _merged_services(
    compose_files: dict[str, dict[str, Any]], *files: str
) -> dict[str, dict[str, Any]]:
    """Services after `docker compose -f a -f b`: volumes merge by target,
    command and other scalars/lists are replaced, maps merge."""
    merged: dict[str, dict[str, Any]] = {}
    for file in files:
        for name, service in compose_files[file]["services"].items():
            into = merged.setdefault(name, {})
            for key, value in service.items():
                if key == "volumes":
                    by_target = {v.split(":")[1]: v for v in into.get("volumes", [])}
                    by_target.update({v.split(":")[1]: v for v in value})
                    into["volumes"] = list(by_target.values())
                elif isinstance(value, dict) and isinstance(into.get(key), dict):
                    into[key] = {**into[key], **value}
                else:
                    into[key] = value
    return merged


def test_every_image_is_pinned(compose_files: dict[str, dict[str, Any]]) -> None:
    seen = set()
    for file, name, service in _services(compose_files):
        if "image" not in service:
            continue  # an override of a service defined in the base file
        match = PINNED.match(service["image"])
        assert match, f"{file}: {name} image {service['image']!r} is not pinned to a release"
        repo, tag = match["repo"], match["tag"]
        assert repo in EXPECTED_MAJOR, f"{file}: unexpected image {repo}"
        major = EXPECTED_MAJOR[repo]
        assert major is None or tag.split(".")[0] == major, (
            f"{repo}:{tag} is not major version {major}"
        )
        seen.add(repo)
    assert seen == set(EXPECTED_MAJOR)


def test_one_collector_release_everywhere(compose_files: dict[str, dict[str, Any]]) -> None:
    images = {
        service["image"]
        for _, _, service in _services(compose_files)
        if service.get("image", "").startswith("otel/opentelemetry-collector-contrib:")
    }
    assert images == {f"otel/opentelemetry-collector-contrib:{COLLECTOR_VERSION}"}
    assert compose_files["docker-compose.gateway.yaml"]["x-otel-gateway"]["image"] in images


def test_mounted_files_exist(compose_files: dict[str, dict[str, Any]]) -> None:
    for file, name, service in _services(compose_files):
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (CONFIG_DIR / source).exists(), f"{file}: {name} mounts missing {source}"
            else:
                declared = set(compose_files["docker-compose.yaml"]["volumes"]) | set(
                    compose_files[file].get("volumes") or {}
                )
                assert source in declared, f"{file}: {name} uses undeclared volume {source}"


@pytest.mark.parametrize(
    ("files", "service"),
    [
        (("docker-compose.yaml",), "otel-collector"),
        (("docker-compose.yaml", "docker-compose.gateway.yaml"), "otel-collector"),
        (("docker-compose.yaml", "docker-compose.gateway.yaml"), "otel-gateway-1"),
        (("docker-compose.yaml", "docker-compose.gateway.yaml"), "otel-gateway-2"),
    ],
)
def test_collector_config_files_are_mounted_and_queues_persisted(
    compose_files: dict[str, dict[str, Any]], files: tuple[str, ...], service: str
) -> None:
    settings = _merged_services(compose_files, *files)[service]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in settings["volumes"]}
    configs = [arg.split("=", 1)[1] for arg in settings["command"] if arg.startswith("--config=")]
    assert configs
    for target in configs:
        assert target in mounts, f"{service} reads {target}, which is not mounted"
        config = load_yaml(CONFIG_DIR / mounts[target])
        for extension, ext_settings in (config.get("extensions") or {}).items():
            if extension.startswith("file_storage"):
                directory = ext_settings["directory"]
                assert directory in mounts and not mounts[directory].startswith("."), (
                    f"{service}: {directory} must be a named volume, or queued data is lost"
                )


def test_gateways_have_separate_queue_volumes(compose_files: dict[str, dict[str, Any]]) -> None:
    merged = _merged_services(compose_files, "docker-compose.yaml", "docker-compose.gateway.yaml")
    queues = {
        name: {
            v.split(":")[0]
            for v in merged[name]["volumes"]
            if v.endswith(":/var/lib/otelcol/file_storage")
        }
        for name in ("otel-collector", "otel-gateway-1", "otel-gateway-2")
    }
    assert all(len(q) == 1 for q in queues.values())
    assert len(set.union(*queues.values())) == 3
    init_targets = {v.split(":")[0] for v in merged["volume-init"]["volumes"]}
    assert set.union(*queues.values()) <= init_targets, (
        "volume-init must hand every queue volume to uid 10001"
    )


def test_published_ports_are_bound_to_loopback(compose_files: dict[str, dict[str, Any]]) -> None:
    for file, name, service in _services(compose_files):
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (
                f"{file}: {name} publishes {port} on every interface"
            )


def test_loki_is_not_published(compose_files: dict[str, dict[str, Any]]) -> None:
    assert "ports" not in compose_files["docker-compose.yaml"]["services"]["loki"]


def test_grafana_is_closed_to_anonymous_users(compose_files: dict[str, dict[str, Any]]) -> None:
    env = compose_files["docker-compose.yaml"]["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert "GRAFANA_ADMIN_PASSWORD" in env["GF_SECURITY_ADMIN_PASSWORD"]


def test_prometheus_accepts_otlp_and_loads_the_rules(
    compose_files: dict[str, dict[str, Any]],
) -> None:
    prometheus = compose_files["docker-compose.yaml"]["services"]["prometheus"]
    assert "--web.enable-otlp-receiver" in prometheus["command"]
    assert "--enable-feature=exemplar-storage" in prometheus["command"]
    retention = next(
        a for a in prometheus["command"] if a.startswith("--storage.tsdb.retention.time=")
    )
    assert int(retention.split("=")[1].rstrip("d")) >= 8, (
        "the traffic alerts compare with last week"
    )
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    config = load_yaml(CONFIG_DIR / mounts["/etc/prometheus/prometheus.yml"])
    (rule_glob,) = config["rule_files"]
    rules_dir, pattern = rule_glob.rsplit("/", 1)
    assert sorted(p.name for p in (CONFIG_DIR / mounts[rules_dir]).glob(pattern)) == [
        "email-alerts.rules.yml",
        "email-recording.rules.yml",
    ]
    # The shipped rules rely on Prometheus' default OTLP name translation.
    assert config["otlp"]["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
    assert not {"service.name", "service.instance.id"} & set(
        config["otlp"].get("promote_resource_attributes", [])
    )


def test_loki_keeps_email_attributes_out_of_the_index() -> None:
    loki = load_yaml(CONFIG_DIR / "loki" / "config.yaml")
    limits = loki["limits_config"]
    assert limits["allow_structured_metadata"] is True
    otlp = limits["otlp_config"]
    rules = (otlp["resource_attributes"].get("attributes_config") or []) + (
        otlp.get("log_attributes") or []
    )
    for rule in rules:
        if rule["action"] == "index_label":
            names = " ".join(rule.get("attributes", [])) + " " + rule.get("regex", "")
            assert "email" not in names
    assert any(
        r["action"] == "structured_metadata" and r.get("regex", "").startswith("email")
        for r in otlp["log_attributes"]
    )
    assert loki["compactor"]["retention_enabled"] is True and limits["retention_period"]
