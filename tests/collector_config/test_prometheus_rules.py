"""Prometheus rules: promtool accepts them and their unit tests pass; every
alert has a summary, a description and a runbook link to a heading of
docs/operations.md, and unit tests that see it fire and stay quiet."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.collector_config.collector_checks import (
    CONFIG_DIR,
    OPERATIONS_DOC,
    load_yaml,
    markdown_anchors,
)

PROMETHEUS_DIR = CONFIG_DIR / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
RUNBOOK_BASE = (
    "https://github.com/opentelemetry-instrumentation-email/opentelemetry-instrumentation-email"
    "/blob/main/docs/operations.md"
)


def _alerts() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


ALERTS = _alerts()
ALL_RULES = [
    rule for path in RULE_FILES for group in load_yaml(path)["groups"] for rule in group["rules"]
]
ALERT_NAMES = [rule["alert"] for rule in ALERTS]


def test_promtool_is_installed() -> None:
    assert shutil.which("promtool"), "promtool is missing: apt-get install -y prometheus"


def test_promtool_check_rules(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert RULE_FILES and result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_test_rules(promtool: str) -> None:
    # promtool resolves each test file's rule_files relative to that file.
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, TEST_FILES)],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROMETHEUS_DIR / "tests",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert TEST_FILES and result.stdout.count("SUCCESS") == len(TEST_FILES)


def test_the_issue_asks_for_these_alerts() -> None:
    assert set(ALERT_NAMES) == {
        "EmailSendSuccessRateLow",  # success rate, overall
        "EmailProviderSuccessRateLow",  # ... and per email_system
        "EmailSendLatencyHigh",  # p95 latency
        "EmailRetryableErrorBurst",  # error bursts, retryable
        "EmailPermanentErrorBurst",  # ... and permanent
        "EmailSmtpConnectionFailing",  # connect/starttls/login, seen by bare smtplib apps too
        "EmailRecipientsRejectedHigh",  # refused recipients per mailbox provider
        "EmailNoMessagesSent",  # silence
        "EmailSendVolumeDrop",  # traffic drop
        "EmailSuccessRateTrendingDown",  # predict_linear trend
        # Delivery events (the providers' webhooks)
        "EmailBounceRateHigh",  # > 2%
        "EmailBounceRateCritical",  # > 5%: Amazon SES reviews at 5%, may pause at 10%
        "EmailComplaintRateHigh",  # > 0.1%
        "EmailComplaintRateCritical",  # > 0.3%: Gmail's and Yahoo's limit
        "EmailHardBouncesByMailboxProvider",  # one mailbox provider bouncing us
        "EmailDeliveryLatencyHigh",  # p95 from send to delivered
        "EmailDeferralsGrowing",  # receiving servers throttle
        "EmailWebhooksRefused",  # probing, or a secret rotated on one side
    }
    assert len(ALERT_NAMES) == len(set(ALERT_NAMES))
    trend = next(r for r in ALERTS if r["alert"] == "EmailSuccessRateTrendingDown")
    assert "predict_linear(" in trend["expr"]
    retryable = {r["alert"]: r["expr"] for r in ALERTS}
    assert 'email_error_retryable="true"' in retryable["EmailRetryableErrorBurst"]
    assert 'email_error_retryable="false"' in retryable["EmailPermanentErrorBurst"]


def test_smtp_session_alert_reads_the_failed_operations() -> None:
    """EmailSmtpConnectionFailing builds on the failed connect, starttls and
    login operations: an app that drives smtplib itself counts no failed
    message when one of them fails."""
    rules = {r.get("record") or r["alert"]: r for r in ALL_RULES}
    alert = rules["EmailSmtpConnectionFailing"]
    used = [name for name in rules if name in alert["expr"] and name != alert["alert"]]
    assert used, alert["expr"]
    for name in used:
        expr = rules[name]["expr"]
        assert "email_client_operation_duration_seconds_count" in expr, name
        assert 'email_operation_name=~"connect|starttls|login"' in expr, name
    failed = [name for name in used if 'error_type!=""' in rules[name]["expr"]]
    assert failed, "the alert must count failed operations"
    for label in ("job", "server_address", "email_operation_name"):
        assert label in alert["annotations"]["summary"], label


DELIVERY_ALERTS = [rule for rule in ALERTS if "email_delivery_" in rule["expr"]]


def test_delivery_ratios_are_built_from_delivery_events_alone() -> None:
    """Numerator and denominator both from the webhooks' events: a provider
    without webhooks, or a webhook endpoint in another service than the
    sender, cannot skew them; soft bounces are not held against the sender,
    and a provider that reports no deliveries gets no bounce rate."""
    rules = {r.get("record") or r["alert"]: r["expr"] for r in ALL_RULES}
    delivery = {name: expr for name, expr in rules.items() if "email_delivery_" in expr}
    assert len(DELIVERY_ALERTS) == 8
    for name, expr in delivery.items():
        assert "email_client_" not in expr, name
    bounce = rules["job_email_system:email_delivery_bounce:ratio_rate1h"]
    assert 'email_delivery_bounce_type=~"hard|undetermined"' in bounce
    assert 'email_delivery_event=~"delivered|bounced"' in bounce
    assert "and on (job, email_system)" in bounce
    complaint = rules["job_email_system:email_delivery_complaint:ratio_rate1d"]
    assert 'email_delivery_event="complained"' in complaint


@pytest.mark.parametrize("rule", DELIVERY_ALERTS, ids=[r["alert"] for r in DELIVERY_ALERTS])
def test_delivery_alert_has_a_minimum_traffic_guard(rule: dict[str, Any]) -> None:
    """One bounce, complaint or refused call among a handful must not page:
    every delivery alert compares a count (a rate times its window) with a
    minimum."""
    counts = re.findall(r":rate(\d+[mhd])\S*\s*\)?\s*\*\s*(\d+)\s*>=\s*\d+", rule["expr"])
    assert counts, rule["expr"]
    for window, seconds in counts:
        assert int(seconds) == {"30m": 1800, "1h": 3600, "1d": 86400}[window], rule["alert"]


@pytest.mark.parametrize("rule", ALERTS, ids=ALERT_NAMES)
def test_alert_is_documented(rule: dict[str, Any]) -> None:
    annotations = rule["annotations"]
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    url = urlsplit(annotations["runbook"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == RUNBOOK_BASE
    assert url.fragment == rule["alert"].lower()
    assert url.fragment in markdown_anchors(OPERATIONS_DOC.read_text(encoding="utf-8")), (
        f"docs/operations.md has no heading for #{url.fragment}"
    )


def _alert_tests() -> dict[str, list[list[Any]]]:
    """alertname -> the exp_alerts lists of every alert_rule_test of it."""
    found: dict[str, list[list[Any]]] = {}
    for path in TEST_FILES:
        document = load_yaml(path)
        for rule_file in document["rule_files"]:
            assert (path.parent / rule_file).resolve() in {p.resolve() for p in RULE_FILES}, (
                path.name
            )
        for group in document["tests"]:
            for case in group.get("alert_rule_test", []):
                found.setdefault(case["alertname"], []).append(case.get("exp_alerts") or [])
    return found


@pytest.mark.parametrize("alertname", ALERT_NAMES)
def test_alert_has_unit_tests_that_fire_and_stay_quiet(alertname: str) -> None:
    cases = _alert_tests().get(alertname, [])
    assert any(cases), f"no promtool test sees {alertname} fire"
    assert any(not expected for expected in cases), f"no promtool test sees {alertname} stay quiet"


def test_unit_tests_only_name_real_alerts() -> None:
    assert set(_alert_tests()) <= set(ALERT_NAMES)


def test_markdown_anchors() -> None:
    doc = "\n".join(
        [
            "# Title",
            "## Data safety",
            "### EmailSendSuccessRateLow",
            "```",
            "# no heading",
            "```",
            "## Data safety",
        ]
    )
    assert markdown_anchors(doc) == {
        "title",
        "data-safety",
        "emailsendsuccessratelow",
        "data-safety-1",
    }
