"""The docs name exactly what the code emits."""

from __future__ import annotations

import re
from pathlib import Path

from opentelemetry.instrumentation.email import _config
from opentelemetry.instrumentation.email import _conventions as c

DOCS = Path(__file__).resolve().parents[1] / "docs"
_NAME = re.compile(r"`((?:email|server|http|error)\.[a-z_.]+)`")


def _emitted_names() -> set:
    prefixes = ("EMAIL_", "SERVER_", "HTTP_", "ERROR_TYPE", "METRIC_", "EVENT_", "LOG_")
    return {
        value
        for name, value in vars(c).items()
        if name.startswith(prefixes) and isinstance(value, str) and "." in value
    }


def test_semantic_conventions_page_lists_every_name_and_no_other() -> None:
    text = (DOCS / "semantic-conventions.md").read_text()
    documented = set(_NAME.findall(text))
    emitted = _emitted_names()
    assert emitted - documented == set(), "emitted but not documented"
    assert documented - emitted == set(), "documented but not emitted"


def test_prometheus_names_on_the_page_follow_the_default_translation() -> None:
    text = (DOCS / "semantic-conventions.md").read_text()
    units = {"s": "_seconds", "By": "_bytes"}
    expected = {
        c.METRIC_OPERATION_DURATION: "s",
        c.METRIC_SENT_MESSAGES: "{message}",
        c.METRIC_RECIPIENTS: "{recipient}",
        c.METRIC_MESSAGE_SIZE: "By",
    }
    for metric, unit in expected.items():
        base = metric.replace(".", "_") + units.get(unit, "")
        prom = base + ("_bucket" if unit in units else "_total")
        assert f"`{prom}`" in text, prom


def test_configuration_page_lists_every_variable() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in ("ENV_CAPTURE_ADDRESSES", "ENV_HASH_KEY", "ENV_CAPTURE_SUBJECT", "ENV_EMIT_LOGS"):
        assert f"`{getattr(_config, name)}`" in text


def _undefined_names(source: str) -> set:
    """Names a snippet reads that it never defines, imports or gets from builtins."""
    import ast
    import builtins

    tree = ast.parse(source)
    defined = set(dir(builtins))
    loaded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((a.asname or a.name).split(".")[0] for a in node.names)
    return loaded - defined


def test_configuration_examples_define_every_name_they_use() -> None:
    text = (DOCS / "configuration.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks
    for block in blocks:
        assert _undefined_names(block) == set(), block


def test_readme_first_screen_installs_an_sdk_and_an_exporter() -> None:
    """Three commands from pip install to spans in the console: the package
    alone records nothing."""
    text = (DOCS.parent / "README.md").read_text()
    section = text[text.index("## Use it in your app") :].split("\n## ", 1)[0]
    commands = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert commands is not None
    lines = commands.group(1).strip().splitlines()
    assert len(lines) == 3
    assert "opentelemetry-distro" in lines[0] and "opentelemetry-exporter-otlp" in lines[0]
    for flag in (
        "--traces_exporter console",
        "--metrics_exporter console",
        "--logs_exporter console",
    ):
        assert flag in lines[1]
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in lines[2]
