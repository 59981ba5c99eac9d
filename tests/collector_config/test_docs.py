"""docs/operations.md: its own links, and every link into it from
collector-config/, land on a heading; the files it names exist."""

from __future__ import annotations

import re

from tests.collector_config.collector_checks import (
    CONFIG_DIR,
    OPERATIONS_DOC,
    REPO,
    markdown_anchors,
)

DOC = OPERATIONS_DOC.read_text(encoding="utf-8")
ANCHORS = markdown_anchors(DOC)


def test_links_within_the_document_resolve() -> None:
    links = re.findall(r"\]\(#([^)]+)\)", DOC)
    assert links
    assert sorted(set(links) - ANCHORS) == []


def test_links_from_the_configuration_resolve() -> None:
    links = {
        (str(path.relative_to(CONFIG_DIR)), anchor)
        for path in CONFIG_DIR.rglob("*")
        if path.is_file()
        for anchor in re.findall(
            r"operations\.md#([A-Za-z0-9_-]+)", path.read_text(encoding="utf-8")
        )
    }
    assert links
    assert sorted((file, anchor) for file, anchor in links if anchor not in ANCHORS) == []


def test_named_configuration_files_exist() -> None:
    named = set(re.findall(r"`((?:collector-config/)?[\w./-]+\.(?:ya?ml|json))`", DOC))
    assert named
    named.discard("docker-compose.override.yaml")  # the one the reader writes
    missing = [
        name
        for name in sorted(named)
        if not (REPO / name).exists()
        and not (CONFIG_DIR / name).exists()
        and not list(CONFIG_DIR.rglob(name))
    ]
    assert missing == []


def test_the_run_command_is_documented() -> None:
    assert "docker compose -f collector-config/docker-compose.yaml up -d" in DOC
    assert "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318" in DOC
