"""``python -m opentelemetry.instrumentation.email doctor``: what this
environment gives the email instrumentation, read locally and never sent.

Run it plainly to check the installation and the settings, or as
``opentelemetry-instrument python -m opentelemetry.instrumentation.email doctor``
to see what an application started the same way gets: the SDK providers, the
libraries instrumented. The only network activity is a TCP connect (no bytes
written) to each OTLP endpoint. Exit status 1 when something is wrong.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import os
import platform
import re
import socket
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from opentelemetry._logs import get_logger_provider
from opentelemetry.instrumentation.environment_variables import (
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS,
)

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.email import LIBRARIES
from opentelemetry.instrumentation.email import _config as config
from opentelemetry.instrumentation.email._telemetry import _is_placeholder
from opentelemetry.instrumentation.email.version import __version__

SIGNALS: Tuple[str, ...] = ("traces", "metrics", "logs")
_OTLP = ("otlp", "otlp_proto_grpc", "otlp_proto_http")
_HTTP = "http/protobuf"
_GRPC = "grpc"
CONNECT_TIMEOUT = 0.5
_DISTRIBUTION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Report = Dict[str, Any]


def _distribution_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _entry_point_names(group: str) -> List[str]:
    if sys.version_info >= (3, 10):
        found = importlib.metadata.entry_points(group=group)
    else:  # pragma: no cover - Python 3.9 returns a dict of groups
        found = importlib.metadata.entry_points().get(group, ())  # type: ignore[attr-defined]
    return sorted({entry.name for entry in found})


def disabled_names(environ: Dict[str, str]) -> List[str]:
    raw = environ.get(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, "")
    return sorted({name.strip() for name in raw.split(",") if name.strip()})


def _library(name: str, target: str, disabled: Sequence[str]) -> Report:
    module, _, attribute = target.partition(":")
    entry: Report = {
        "name": name,
        "instrumentor": target,
        "installed": False,
        "distribution": None,
        "version": None,
        "instrumented": False,
        "disabled": name in disabled,
        "error": None,
    }
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except ImportError:
        return entry  # the instrumentor imports its library first
    except Exception as exc:  # a library that fails to import for another reason
        entry["error"] = f"{type(exc).__name__}: {exc}"
        return entry
    entry["installed"] = True
    dependencies = tuple(getattr(cls, "dependencies", ()) or ())
    if dependencies:
        match = _DISTRIBUTION.match(str(dependencies[0]).strip())
        if match:
            entry["distribution"] = match.group(0)
            entry["version"] = _distribution_version(match.group(0))
    elif name == "smtplib":
        entry["distribution"] = "python"
        entry["version"] = platform.python_version()
    entry["instrumented"] = bool(cls().is_instrumented_by_opentelemetry)
    return entry


def _providers() -> Report:
    out: Report = {}
    for name, provider in (
        ("tracer", trace.get_tracer_provider()),
        ("meter", metrics.get_meter_provider()),
        ("logger", get_logger_provider()),
    ):
        kind = type(provider)
        out[name] = {
            "class": f"{kind.__module__}.{kind.__qualname__}",
            "sdk": not _is_placeholder(provider),
        }
    return out


def _protocol(signal: str, exporter: str, environ: Dict[str, str]) -> str:
    if exporter == "otlp_proto_http":
        return _HTTP
    if exporter == "otlp_proto_grpc":
        return _GRPC
    chosen = (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or ""
    ).strip()
    # Unset: the Python SDK's "otlp" is the gRPC exporter (and
    # opentelemetry-distro sets OTEL_EXPORTER_OTLP_PROTOCOL=grpc).
    return chosen or _GRPC


def _endpoint(signal: str, protocol: str, environ: Dict[str, str]) -> str:
    specific = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if specific:
        return specific
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if protocol == _HTTP:
        return (base or "http://localhost:4318").rstrip("/") + f"/v1/{signal}"
    return base or "http://localhost:4317"


def _address(endpoint: str) -> Tuple[str, int]:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "localhost", port


def _connect(host: str, port: int) -> str:
    """Opens a TCP connection and closes it at once: nothing is sent."""
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return "reachable"
    except ConnectionRefusedError:
        return "refused"
    except socket.timeout:
        return "timed out"
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"


def _exporters(environ: Dict[str, str], problems: List[str]) -> Report:
    out: Report = {}
    checked: Dict[Tuple[str, int], str] = {}
    for signal in SIGNALS:
        variable = f"OTEL_{signal.upper()}_EXPORTER"
        raw = environ.get(variable, "").strip()
        names = [n.strip() for n in (raw or "otlp").split(",") if n.strip()]
        if [n.lower() for n in names] == ["none"]:
            names = []
        available = _entry_point_names(f"opentelemetry_{signal}_exporter")
        rows: List[Report] = []
        for name in names:
            row: Report = {"name": name, "entry_point": name}
            if name in _OTLP:
                protocol = _protocol(signal, name, environ)
                if protocol not in (_HTTP, _GRPC):
                    problems.append(f"{signal}: OTLP protocol {protocol!r} is not supported")
                    rows.append(row)
                    continue
                entry_point = "otlp_proto_http" if protocol == _HTTP else "otlp_proto_grpc"
                endpoint = _endpoint(signal, protocol, environ)
                host, port = _address(endpoint)
                if (host, port) not in checked:
                    checked[(host, port)] = _connect(host, port)
                status = checked[(host, port)]
                row.update(
                    entry_point=entry_point, protocol=protocol, endpoint=endpoint, status=status
                )
                if status != "reachable":
                    problems.append(f"{signal}: OTLP endpoint {endpoint} is {status}")
            if row["entry_point"] not in available:
                row["installed"] = False
                problems.append(
                    f"{signal}: exporter {row['entry_point']!r} ({variable}) is not installed"
                )
            else:
                row["installed"] = True
            rows.append(row)
        out[signal] = {"variable": variable, "value": raw or None, "exporters": rows}
    return out


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _settings(environ: Dict[str, str], problems: List[str]) -> Report:
    logger = logging.getLogger(config.__name__)
    capture = _Capture()
    saved = (logger.level, logger.propagate)
    logger.addHandler(capture)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    # Under opentelemetry-instrument the instrumentors have already warned
    # about a bad value once; forget that, so the doctor hears it again.
    config._warned.clear()
    try:
        settings = config.Settings.from_environment({}, environ)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
    problems.extend(f"setting: {message}" for message in capture.messages)
    return {
        "capture_addresses": settings.privacy.mode,
        "capture_subject": settings.privacy.capture_subject,
        "emit_logs": settings.emit_logs,
        "category_header": settings.category_header,
        "category_limit": settings.category_limit,
        "hash_key": "configured" if environ.get(config.ENV_HASH_KEY) else "per process",
        "warnings": capture.messages,
    }


def diagnose(environ: Optional[Dict[str, str]] = None) -> Report:
    """Every fact the doctor reports, and the problems found."""
    env = dict(os.environ if environ is None else environ)
    problems: List[str] = []
    disabled = disabled_names(env)
    auto = "opentelemetry.instrumentation.auto_instrumentation" in sys.modules
    libraries = [_library(name, target, disabled) for name, target in LIBRARIES.items()]
    for library in libraries:
        if library["error"]:
            problems.append(f"library {library['name']}: import failed: {library['error']}")
    providers = _providers()
    exporters = _exporters(env, problems)
    configurators = _entry_point_names("opentelemetry_configurator")
    notes: List[str] = []
    provider_of = {"traces": "tracer", "metrics": "meter", "logs": "logger"}
    for signal in SIGNALS:
        wanted = exporters[signal]["exporters"]
        if not wanted or providers[provider_of[signal]]["sdk"]:
            continue
        if auto:
            problems.append(
                f"{signal}: no SDK {provider_of[signal]} provider is configured, "
                f"but {exporters[signal]['variable']} expects an exporter"
            )
        elif not configurators:
            problems.append(
                f"{signal}: opentelemetry-instrument would configure no SDK "
                "(no configurator installed: pip install opentelemetry-distro)"
            )
    if not auto:
        notes.append(
            "not run under opentelemetry-instrument: providers and 'instrumented' "
            "describe this process only"
        )
    settings = _settings(env, problems)
    return {
        "instrumentation_version": __version__,
        "python": platform.python_version(),
        "opentelemetry_instrument": auto,
        "libraries": libraries,
        "disabled": disabled,
        "providers": providers,
        "configurators": configurators,
        "exporters": exporters,
        "settings": settings,
        "notes": notes,
        "problems": problems,
        "ok": not problems,
    }


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def render(report: Report) -> str:
    lines = [
        f"opentelemetry-instrumentation-email {report['instrumentation_version']} doctor"
        " (reads only; sends nothing)",
        f"Python {report['python']}; under opentelemetry-instrument: "
        f"{_yes(report['opentelemetry_instrument'])}",
        "",
        "Libraries",
    ]
    for lib in report["libraries"]:
        if lib["installed"]:
            version = (
                f"{lib['distribution']} {lib['version'] or '?'}" if lib["distribution"] else ""
            )
            state = f"installed {version}".rstrip()
            state += f"; instrumented: {_yes(lib['instrumented'])}"
        else:
            state = "import failed" if lib["error"] else "not installed"
        if lib["disabled"]:
            state += f"; disabled by {OTEL_PYTHON_DISABLED_INSTRUMENTATIONS}"
        lines.append(f"  {lib['name']:<26} {state}")
    if report["disabled"]:
        lines.append(f"  {OTEL_PYTHON_DISABLED_INSTRUMENTATIONS}={','.join(report['disabled'])}")
    lines += ["", "Providers"]
    for name, provider in report["providers"].items():
        kind = "SDK" if provider["sdk"] else "none (API placeholder)"
        lines.append(f"  {name + ' provider':<16} {kind}: {provider['class']}")
    lines += ["", "Exporters"]
    for signal, info in report["exporters"].items():
        if not info["exporters"]:
            lines.append(f"  {signal:<8} none")
        for row in info["exporters"]:
            text = f"  {signal:<8} {row['name']}"
            if "endpoint" in row:
                text += f" ({row['protocol']}) -> {row['endpoint']}: {row['status']}"
            if not row.get("installed", True):
                text += f" [exporter {row['entry_point']!r} not installed]"
            lines.append(text)
    settings = report["settings"]
    lines += [
        "",
        "Privacy settings",
        f"  capture_addresses  {settings['capture_addresses']}",
        f"  capture_subject    {str(settings['capture_subject']).lower()}",
        f"  emit_logs          {str(settings['emit_logs']).lower()}",
        f"  category_header    {settings['category_header'] or 'none'}",
        f"  category_limit     {settings['category_limit']}",
        f"  hash_key           {settings['hash_key']}",
    ]
    if report["notes"]:
        lines += ["", "Notes"] + [f"  - {note}" for note in report["notes"]]
    lines.append("")
    if report["problems"]:
        lines.append(f"Problems ({len(report['problems'])})")
        lines += [f"  - {problem}" for problem in report["problems"]]
    else:
        lines.append("No problems found.")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opentelemetry.instrumentation.email",
        description="Tools for opentelemetry-instrumentation-email.",
    )
    commands = parser.add_subparsers(dest="command")
    doctor = commands.add_parser(
        "doctor", help="report libraries, providers, exporters and privacy settings"
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.command != "doctor":
        parser.print_help()
        return 2
    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render(report))
    return 0 if report["ok"] else 1
