"""Grafana provisioning: fixed data source uids, every uid a panel, query,
link or data source names is provisioned, the signal links go where they
should, dashboards load from the file provider with unique uids."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.collector_config.collector_checks import CONFIG_DIR, collector_unescape, load_yaml

# Grafana's own pseudo data sources.
BUILTIN_UIDS = {"-- Grafana --", "grafana", "-- Mixed --", "-- Dashboard --"}


def _provisioned(datasources: list[dict[str, Any]]) -> dict[str, str]:
    return {ds["uid"]: ds["type"] for ds in datasources}


def _walk(node: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, key, value) for every mapping entry in a document."""
    found: list[tuple[str, Any, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key, value))
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _walk(value, f"{path}[{index}]")
    return found


def _explore_datasources(url: str) -> list[tuple[str, str | None]]:
    """(uid, type) pairs named in a Grafana Explore link's panes/left state."""
    query = parse_qs(urlsplit(url).query)
    found: list[tuple[str, str | None]] = []
    for key in ("panes", "left"):
        for raw in query.get(key, []):
            # ${...} are Grafana variables, interpolated when the link is used.
            state = json.loads(re.sub(r"\$\{[^}]*\}", "x", unquote(raw)))
            for _, k, value in _walk(state):
                if k == "datasource" and isinstance(value, str):
                    found.append((value, None))
                elif k == "datasource" and isinstance(value, dict):
                    found.append((value["uid"], value.get("type")))
    return found


def test_datasources_have_fixed_unique_uids(datasources: list[dict[str, Any]]) -> None:
    uids = [ds.get("uid") for ds in datasources]
    assert all(uids), "every data source needs a fixed uid"
    assert len(set(uids)) == len(uids)
    assert len({ds["name"] for ds in datasources}) == len(datasources)
    assert {ds["type"] for ds in datasources} == {"prometheus", "loki", "jaeger"}
    assert sum(1 for ds in datasources if ds.get("isDefault")) == 1


def test_datasources_point_at_the_compose_services(datasources: list[dict[str, Any]]) -> None:
    urls = {ds["type"]: ds["url"] for ds in datasources}
    assert urls == {
        "prometheus": "http://prometheus:9090",
        "loki": "http://loki:3100",
        "jaeger": "http://jaeger:16686",
    }


def test_every_datasource_uid_named_in_provisioning_exists(
    datasources: list[dict[str, Any]],
) -> None:
    provisioned = _provisioned(datasources)
    named = [(path, value) for path, key, value in _walk(datasources) if key == "datasourceUid"]
    assert named
    for path, uid in named:
        assert uid in provisioned, f"{path}: {uid!r} is not provisioned"


def test_signals_link_to_each_other(datasources: list[dict[str, Any]]) -> None:
    by_type = {ds["type"]: ds for ds in datasources}
    uid = {t: ds["uid"] for t, ds in by_type.items()}
    prometheus, jaeger, loki = (
        by_type["prometheus"]["jsonData"],
        by_type["jaeger"]["jsonData"],
        by_type["loki"]["jsonData"],
    )
    # metric exemplar -> trace
    assert [d["datasourceUid"] for d in prometheus["exemplarTraceIdDestinations"]] == [
        uid["jaeger"]
    ]
    assert prometheus["exemplarTraceIdDestinations"][0]["name"] == "trace_id"
    # trace -> logs of the same trace
    assert jaeger["tracesToLogsV2"]["datasourceUid"] == uid["loki"]
    assert "trace_id" in collector_unescape(jaeger["tracesToLogsV2"]["query"])
    # trace -> metrics of the same service
    assert jaeger["tracesToMetrics"]["datasourceUid"] == uid["prometheus"]
    # log line -> trace
    fields = loki["derivedFields"]
    assert [f["datasourceUid"] for f in fields] == [uid["jaeger"]]
    assert fields[0]["matcherType"] == "label" and fields[0]["matcherRegex"] == "trace_id"


def test_provisioning_escapes_dollars(datasources: list[dict[str, Any]]) -> None:
    # Grafana expands $NAME and ${NAME} from the environment in provisioning
    # files; Grafana's own ${__...} placeholders must be written $${...}.
    for path, _, value in _walk(datasources):
        if isinstance(value, str) and "$" in value:
            unescaped = value.replace("$$", "")
            assert "$" not in unescaped, f"{path}: {value!r} would be expanded from the environment"


def test_dashboard_provider_loads_files_from_the_mounted_folder(
    compose_files: dict[str, dict[str, Any]],
) -> None:
    providers = load_yaml(CONFIG_DIR / "grafana" / "provisioning" / "dashboards" / "email.yaml")
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    mounts = {
        target: source
        for source, target, *_ in (
            v.split(":")
            for v in compose_files["docker-compose.yaml"]["services"]["grafana"]["volumes"]
        )
    }
    source = mounts[provider["options"]["path"]]
    assert sorted(p.name for p in (CONFIG_DIR / source).glob("*.json")) == ["email-delivery.json"]


def test_dashboard_uids_are_unique(dashboards: dict[str, dict[str, Any]]) -> None:
    uids = [d.get("uid") for d in dashboards.values()]
    assert all(uids)
    assert len(set(uids)) == len(uids)
    assert all(d.get("title") for d in dashboards.values())


def test_every_datasource_a_dashboard_names_is_provisioned(
    dashboards: dict[str, dict[str, Any]], datasources: list[dict[str, Any]]
) -> None:
    provisioned = _provisioned(datasources)
    for name, dashboard in dashboards.items():
        references = 0
        for path, key, value in _walk(dashboard):
            if (
                key == "datasource"
                and isinstance(value, dict)
                and value.get("uid") not in BUILTIN_UIDS
            ):
                references += 1
                assert value["uid"] in provisioned, (
                    f"{name}{path}: {value['uid']!r} is not provisioned"
                )
                assert value.get("type") == provisioned[value["uid"]], f"{name}{path}: wrong type"
            elif key == "datasource" and isinstance(value, str):
                pytest.fail(f"{name}{path}: name a data source by uid, not by name {value!r}")
            elif key in ("datasourceUid",):
                assert value in provisioned, f"{name}{path}"
            elif key == "url" and isinstance(value, str) and "/explore" in value:
                for uid, ds_type in _explore_datasources(value):
                    references += 1
                    assert uid in provisioned, (
                        f"{name}{path}: link names unknown data source {uid!r}"
                    )
                    assert ds_type in (None, provisioned[uid])
        assert references > 0


def test_dashboard_covers_every_signal(dashboards: dict[str, dict[str, Any]]) -> None:
    dashboard = dashboards["grafana/dashboards/email-delivery.json"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    types_by_ds = {(p["datasource"]["type"], p["type"]) for p in panels}
    assert ("loki", "logs") in types_by_ds
    assert any(ds == "jaeger" for ds, _ in types_by_ds)
    titles = " / ".join(p["title"].lower() for p in panels)
    for topic in (
        "send attempts",
        "success rate",
        "latency",
        "error.type",
        "retryable",
        "refused",
        "message size",
        # what the providers' webhooks report after the send
        "delivery events",
        "bounce rate",
        "complaint rate",
        "hard bounces by mailbox provider",
        "delivery time",
        "deferred",
        "refused webhook calls",
    ):
        assert topic in titles, topic
    exemplar_targets = [t for p in panels for t in p.get("targets", []) if t.get("exemplar")]
    assert exemplar_targets, "latency exemplars link metrics to traces"


def test_delivery_row_reads_the_recording_rules_and_links_to_the_send_side(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    """The Delivery row shows what the alerts see (their recording rules),
    and its panels and the send side's link to each other by panel id."""
    dashboard = dashboards["grafana/dashboards/email-delivery.json"]
    panels = dashboard["panels"]
    by_id = {p["id"]: p for p in panels}
    start = next(i for i, p in enumerate(panels) if p["title"].startswith("Delivery ("))
    end = next(i for i, p in enumerate(panels) if i > start and p["type"] == "row")
    delivery = panels[start + 1 : end]
    assert len(delivery) >= 6
    for panel in delivery:
        for target in panel["targets"]:
            assert "email_delivery_" in target["expr"] and ":" in target["expr"], panel["title"]
    linked = {}
    for panel in panels:
        for link in panel.get("links", []):
            match = re.search(r"viewPanel=(\d+)", link["url"])
            if match:
                assert link["url"].startswith(f"/d/{dashboard['uid']}/"), link
                linked[panel["id"]] = int(match.group(1))
    assert linked and all(target in by_id for target in linked.values()), linked
    delivery_ids = {p["id"] for p in delivery}
    assert any(src in delivery_ids and dst not in delivery_ids for src, dst in linked.items())
    assert any(src not in delivery_ids and dst in delivery_ids for src, dst in linked.items())


def test_dashboard_panels_fit_the_grid_and_have_unique_ids(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in dashboards.items():
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(set(ids)) == len(ids), name
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']}"


def test_dashboard_uses_only_defined_variables(dashboards: dict[str, dict[str, Any]]) -> None:
    builtin = {
        "__rate_interval",
        "__interval",
        "__range",
        "__from",
        "__to",
        "__all",
        "__field",
        "__value",
        "__data",
    }
    for name, dashboard in dashboards.items():
        defined = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
        text = json.dumps(dashboard)
        used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
        assert used - defined - builtin == set(), name
