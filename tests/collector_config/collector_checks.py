"""Offline checks of collector-config/: loaders, the collector's config merge,
structural checks of collector configurations, and a small PromQL scanner.

The test modules next to this file call these; each check returns a list of
problems (empty when all is well) so that a failing test names every problem
at once.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "collector-config"
OPERATIONS_DOC = REPO / "docs" / "operations.md"

# The one collector-contrib release the configuration is written for; the
# compose files pin this image and the component names below are its names.
COLLECTOR_VERSION = "0.160.0"

BASE_CONFIG = CONFIG_DIR / "otel-collector.yaml"
GATEWAY_CONFIG = CONFIG_DIR / "otel-collector-gateway.yaml"
JAEGER_CONFIG = CONFIG_DIR / "jaeger" / "config.yaml"
# Every `otel-collector.<variant>.yaml` is an overlay merged over the base.
VARIANT_CONFIGS = sorted(CONFIG_DIR.glob("otel-collector.*.yaml"))

# Prometheus names of the contract's instruments (default translation), and
# the labels they carry (../shared/contract/telemetry.md).
CONTRACT_METRICS = frozenset(
    {
        "email_client_operation_duration_seconds_bucket",
        "email_client_operation_duration_seconds_sum",
        "email_client_operation_duration_seconds_count",
        "email_client_sent_messages_total",
        "email_client_recipients_total",
        "email_client_message_size_bytes_bucket",
        "email_client_message_size_bytes_sum",
        "email_client_message_size_bytes_count",
        # v2 (Delivery events): what the providers' webhooks report.
        "email_delivery_events_total",
        "email_delivery_duration_seconds_bucket",
        "email_delivery_duration_seconds_sum",
        "email_delivery_duration_seconds_count",
        "email_delivery_webhooks_refused_total",
    }
)
CONTRACT_LABELS = frozenset(
    {
        "email_system",
        "email_operation_name",
        "server_address",
        "error_type",
        "email_error_retryable",
        "email_recipient_status",
        "email_recipient_domain",
        # v2 (Frameworks): the kind of mail, on sent messages and send
        # durations; absent when the app gives none.
        "email_category",
        # v2 (Delivery events): delivered, bounced, deferred, ...; hard, soft
        # or undetermined on bounced.
        "email_delivery_event",
        "email_delivery_bounce_type",
    }
)
# What every route (Prometheus' OTLP receiver, a scrape) adds.
TARGET_LABELS = frozenset({"job", "instance", "le"})


# ---------------------------------------------------------------------------
# Loading


class DuplicateKeyError(yaml.constructor.ConstructorError):
    pass


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key repeated within one mapping.

    PyYAML silently keeps the last of two equal keys; the collector, Grafana
    and Prometheus would too, so a duplicated `exporters:` block would drop
    half a configuration without a word. Keys brought in by a `<<:` merge may
    be overridden: that is what merge keys are for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise DuplicateKeyError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)


def load_yaml(path: Path) -> Any:
    return load_yaml_text(path.read_text(encoding="utf-8"))


def _reject_duplicate_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in a JSON object")
        result[key] = value
    return result


def load_json_text(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_reject_duplicate_pairs)


def load_json(path: Path) -> Any:
    return load_json_text(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# The collector's configuration semantics


def merge_configs(base: Any, overlay: Any) -> Any:
    """Merge two configurations the way `--config a --config b` does:
    maps are merged key by key (recursively), anything else -- lists
    included -- is replaced by the later file's value."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge_configs(base[key], value) if key in base else value
        return merged
    return overlay


def load_variant(path: Path) -> dict[str, Any]:
    """The base configuration with `path` merged over it."""
    return merge_configs(load_yaml(BASE_CONFIG), load_yaml(path))


_ENV_REF = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}")


def collector_unescape(value: str) -> str:
    """A string as the collector hands it to a component: `$$` is a literal
    `$`. `${env:NAME}` references are left in place; any other `$` is an
    error, because the collector would try to expand it."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$", i):
            match = _ENV_REF.match(value, i)
            if match is None:
                raise ValueError(f"unescaped '$' at offset {i} in {value!r}: write '$$'")
            out.append(match.group(0))
            i = match.end()
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def iter_strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a loaded document, with a dotted path to it."""
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, dict):
        found: list[tuple[str, str]] = []
        for key, value in node.items():
            found += iter_strings(value, f"{path}.{key}" if path else str(key))
        return found
    if isinstance(node, list):
        found = []
        for index, value in enumerate(node):
            found += iter_strings(value, f"{path}[{index}]")
        return found
    return []


KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
SIGNALS = ("traces", "metrics", "logs", "profiles")

# Component types of collector-contrib 0.160.0 that these files may use.
CANONICAL_TYPES = {
    "receivers": {"otlp"},
    "processors": {
        "memory_limiter",
        "resource_detection",
        "redaction",
        "transform",
        "tail_sampling",
    },
    "exporters": {
        "otlp_grpc",
        "otlp_http",
        "elasticsearch",
        "splunk_hec",
        "load_balancing",
        "debug",
    },
    "connectors": {"span_metrics"},
    "extensions": {"health_check", "file_storage"},
}
# Old names: they still load in 0.160.0, with a deprecation warning.
DEPRECATED_TYPES = {
    ("exporters", "otlp"): "otlp_grpc (renamed in 0.144)",
    ("exporters", "otlphttp"): "otlp_http (renamed in 0.144)",
    ("connectors", "spanmetrics"): "span_metrics (renamed in 0.151)",
    ("processors", "resourcedetection"): "resource_detection (renamed in 0.153)",
    ("exporters", "loadbalancing"): "load_balancing (renamed in 0.153)",
    (
        "processors",
        "batch",
    ): "sending_queue.batch in the exporters (the batch processor is being retired)",
}
REMOVED_TYPES = {("exporters", "loki"): "removed in 0.131; use otlp_http to Loki's /otlp endpoint"}

# Jaeger v2 is a collector build with components of its own.
JAEGER_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch"},
    "exporters": {"jaeger_storage_exporter"},
    "connectors": set(),
    "extensions": {"jaeger_storage", "jaeger_query", "healthcheckv2"},
}

# Which pipeline signals a connector joins: (exporter side, receiver side).
CONNECTOR_SIGNALS = {"span_metrics": ("traces", "metrics")}


def component_type(component_id: str) -> str:
    """`otlp_http/loki` -> `otlp_http`."""
    return component_id.split("/", 1)[0]


def naming_problems(
    cfg: dict[str, Any], allowed: dict[str, set[str]] = CANONICAL_TYPES
) -> list[str]:
    problems = []
    for kind in KINDS:
        for component_id in cfg.get(kind) or {}:
            ctype = component_type(component_id)
            if ctype in allowed[kind]:
                continue
            if (kind, ctype) in REMOVED_TYPES:
                problems.append(f"{kind}.{component_id}: {REMOVED_TYPES[kind, ctype]}")
            elif (kind, ctype) in DEPRECATED_TYPES:
                problems.append(f"{kind}.{component_id}: use {DEPRECATED_TYPES[kind, ctype]}")
            else:
                problems.append(f"{kind}.{component_id}: unknown {kind[:-1]} type {ctype!r}")
    return problems


def pipeline_problems(cfg: dict[str, Any], *, allow_unused: bool = False) -> list[str]:
    """Pipelines and service.extensions only name declared components,
    memory_limiter comes first, connectors are wired both ways; unless
    `allow_unused`, every declared component is used."""
    problems: list[str] = []
    declared = {kind: set(cfg.get(kind) or {}) for kind in KINDS}
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    service = cfg.get("service") or {}

    for ext in service.get("extensions") or []:
        if ext in declared["extensions"]:
            used["extensions"].add(ext)
        else:
            problems.append(f"service.extensions names undeclared extension {ext!r}")

    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("no pipelines")
    as_exporter: dict[str, list[str]] = defaultdict(list)
    as_receiver: dict[str, list[str]] = defaultdict(list)
    for pipeline_id, pipeline in pipelines.items():
        where = f"pipeline {pipeline_id}"
        if component_type(pipeline_id) not in SIGNALS:
            problems.append(f"{where}: unknown signal")
        receivers = pipeline.get("receivers") or []
        processors = pipeline.get("processors") or []
        exporters = pipeline.get("exporters") or []
        if not receivers or not exporters:
            problems.append(f"{where}: needs at least one receiver and one exporter")
        for name in receivers:
            if name in declared["receivers"]:
                used["receivers"].add(name)
            elif name in declared["connectors"]:
                as_receiver[name].append(pipeline_id)
            else:
                problems.append(f"{where}: undeclared receiver {name!r}")
        for name in processors:
            if name in declared["processors"]:
                used["processors"].add(name)
            else:
                problems.append(f"{where}: undeclared processor {name!r}")
        for name in exporters:
            if name in declared["exporters"]:
                used["exporters"].add(name)
            elif name in declared["connectors"]:
                as_exporter[name].append(pipeline_id)
            else:
                problems.append(f"{where}: undeclared exporter {name!r}")
        if not processors or component_type(processors[0]) != "memory_limiter":
            problems.append(
                f"{where}: memory_limiter must be the first processor, got {processors}"
            )
        for kind, names in (
            ("receivers", receivers),
            ("processors", processors),
            ("exporters", exporters),
        ):
            if len(set(names)) != len(names):
                problems.append(f"{where}: a {kind[:-1]} is listed twice in {names}")

    for connector in sorted(set(as_exporter) | set(as_receiver)):
        used["connectors"].add(connector)
        exp_side, rec_side = as_exporter.get(connector, []), as_receiver.get(connector, [])
        if not exp_side or not rec_side:
            problems.append(
                f"connector {connector!r} must be an exporter in one pipeline and a receiver in "
                f"another (exporter in {exp_side}, receiver in {rec_side})"
            )
        if set(exp_side) & set(rec_side):
            problems.append(f"connector {connector!r} feeds the pipeline it comes from")
        signals = CONNECTOR_SIGNALS.get(component_type(connector))
        if signals:
            for pipeline_id in exp_side:
                if component_type(pipeline_id) != signals[0]:
                    problems.append(
                        f"connector {connector!r} takes {signals[0]}, not {pipeline_id}"
                    )
            for pipeline_id in rec_side:
                if component_type(pipeline_id) != signals[1]:
                    problems.append(
                        f"connector {connector!r} emits {signals[1]}, not into {pipeline_id}"
                    )

    if not allow_unused:
        for kind in KINDS:
            for name in sorted(declared[kind] - used[kind]):
                problems.append(f"{kind}.{name} is declared but never used")
    return problems


_OTLP_HTTP_SIGNAL_PATH = re.compile(r"/v1/(traces|metrics|logs|profiles)/?$")


def exporter_problems(cfg: dict[str, Any]) -> list[str]:
    """No removed `loki` exporter; OTLP/HTTP endpoints are base URLs (the
    exporter appends /v1/<signal>); every exporter has a persistent queue on a
    declared, loaded storage extension, and retries."""
    problems: list[str] = []
    extensions = set(cfg.get("extensions") or {})
    loaded = set((cfg.get("service") or {}).get("extensions") or [])
    for exporter_id, settings in (cfg.get("exporters") or {}).items():
        settings = settings or {}
        ctype = component_type(exporter_id)
        where = f"exporters.{exporter_id}"
        if ctype == "loki":
            problems.append(f"{where}: the loki exporter was removed in 0.131")
        if ctype in ("otlp_http", "otlphttp"):
            endpoint = settings.get("endpoint", "")
            if _OTLP_HTTP_SIGNAL_PATH.search(endpoint):
                problems.append(
                    f"{where}: endpoint {endpoint!r} ends in /v1/<signal>; give the base URL"
                )
        queue = settings.get("sending_queue") or {}
        storage = queue.get("storage")
        if queue.get("enabled") is False or not storage:
            problems.append(f"{where}: needs sending_queue.storage (a persistent queue)")
        elif storage not in extensions:
            problems.append(
                f"{where}: sending_queue.storage {storage!r} is not a declared extension"
            )
        elif storage not in loaded:
            problems.append(
                f"{where}: sending_queue.storage {storage!r} is not in service.extensions"
            )
        elif component_type(storage) != "file_storage":
            problems.append(
                f"{where}: sending_queue.storage {storage!r} is not a file_storage extension"
            )
        # The Elasticsearch exporter retries bulk requests itself (`retry`).
        retry = (
            settings.get("retry") if ctype == "elasticsearch" else settings.get("retry_on_failure")
        )
        if not (retry or {}).get("enabled", False):
            problems.append(f"{where}: retries are not enabled")
    return problems


def health_check_problems(cfg: dict[str, Any]) -> list[str]:
    extensions = cfg.get("extensions") or {}
    loaded = (cfg.get("service") or {}).get("extensions") or []
    checks = [name for name in extensions if component_type(name) == "health_check"]
    if not checks:
        return ["no health_check extension"]
    problems = []
    for name in checks:
        if (extensions[name] or {}).get("endpoint") != "0.0.0.0:13133":
            problems.append(f"extensions.{name}: endpoint must be 0.0.0.0:13133")
        if name not in loaded:
            problems.append(f"extensions.{name} is not in service.extensions")
    return problems


def escape_problems(cfg: Any) -> list[str]:
    """Every `$` in the file is `$$` or an `${env:...}` reference."""
    problems = []
    for path, value in iter_strings(cfg):
        try:
            collector_unescape(value)
        except ValueError as error:
            problems.append(f"{path}: {error}")
    return problems


# ---------------------------------------------------------------------------
# PromQL scanning (enough for names; promtool checks the syntax)

_PROMQL_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_PROMQL_BRACES = re.compile(r"\{([^{}]*)\}")
_PROMQL_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_PROMQL_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")
_PROMQL_IDENT = re.compile(r"(?<![\w.:$])([A-Za-z_:][A-Za-z0-9_:]*)")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_PROMQL_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "atan2",
        "inf",
        "nan",
    }
)


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression refers to."""
    text = _PROMQL_STRING.sub('""', expr)
    labels: set[str] = set()
    for body in _PROMQL_BRACES.findall(text):
        labels.update(_MATCHER_LABEL.findall(body))
    text = _PROMQL_BRACES.sub(" ", text)
    text = _PROMQL_BRACKETS.sub(" ", text)
    for body in _PROMQL_GROUPING.findall(text):
        labels.update(name.strip() for name in body.split(",") if name.strip())
    text = _PROMQL_GROUPING.sub(" ", text)
    metrics = set()
    for match in _PROMQL_IDENT.finditer(text):
        name = match.group(1)
        if name in _PROMQL_KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):  # a function or aggregation
            continue
        metrics.add(name)
    return metrics, labels


_GRAFANA_INTERVAL = re.compile(
    r"\$__(?:rate_interval|interval|range)\b|\$\{__(?:rate_interval|interval|range)\}"
)
_GRAFANA_VARIABLE = re.compile(r"\$\{[A-Za-z0-9_]+(?::[A-Za-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*")


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables filled in, for promtool:
    intervals become 5m, template variables (always inside a quoted regex
    matcher here) match anything, the `$__tags` of a trace-to-metrics query
    becomes a plain matcher."""
    expr = _GRAFANA_INTERVAL.sub("5m", expr)
    expr = expr.replace("$__tags", 'job=~".+"')
    return _GRAFANA_VARIABLE.sub(".*", expr)


_LABEL_VALUES = re.compile(
    r"^\s*label_values\((?:(.*),)?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S
)


def split_label_values(query: str) -> tuple[str | None, str] | None:
    """`label_values(metric{...}, label)` -> ("metric{...}", "label")."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        return None
    return (match.group(1).strip() if match.group(1) else None), match.group(2)


def markdown_anchors(markdown: str) -> set[str]:
    """The anchors GitHub generates for a document's headings."""
    anchors: set[str] = set()
    counts: dict[str, int] = defaultdict(int)
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_code or match is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        anchors.add(slug if counts[slug] == 0 else f"{slug}-{counts[slug]}")
        counts[slug] += 1
    return anchors
