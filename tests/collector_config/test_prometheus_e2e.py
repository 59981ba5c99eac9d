"""End to end with a real Prometheus.

The quickstart demo (examples/quickstart.py) runs for real: an embedded SMTP
server, a round of mails every second -- some accepted, one with a refused
recipient, one greylisted (451, retryable) and retried, one through Django's
SMTP backend to a server that is down -- then replays its provider's
Mailgun-shaped webhooks to its own DeliveryWebhook endpoint (a delivery, a
hard bounce, a complaint and a call with a wrong signing key), and serves
OpenTelemetry's Prometheus exporter on a free port. Next to it a server-down run
(server_down_app.py, its own scrape job) never gets one message out: Django
sends to a dead port and to a server that refuses the login, both with
fail_silently=True, and bare smtplib connects and logins that fail. A
webhook run (delivery_webhooks_app.py) is the shop's endpoint for Postmark's
delivery webhooks: recorded webhook bodies through
`DeliveryWebhook("postmark", ...).handle(body, headers)` every second -- 90
deliveries and 10 hard bounces at gmail.com, a spam complaint, a deferral and
a call with the wrong password. A real `prometheus` (Debian's package;
missing means failure, not a skip) scrapes all three every second with the
shipped rules loaded and evaluated every second; the webhook run is a second
instance of the demo's job, as the shop both sends mail and receives its
provider's webhooks. Then, through Prometheus' HTTP API:

- the demo is scraped as job="shop-mailer" (what the rules and panels group
  by) and its service.name reaches `target_info`;
- every shipped rule loads and evaluates without error;
- every recording rule's expression, and the series it records, returns a
  number;
- every Prometheus query of the dashboards (panel targets, the variables'
  `label_values` selectors) and of the datasources' trace-to-metrics links
  returns a number, with Grafana's variables filled in;
- the messages Django never got to the server are counted failed, as the
  contract's message accounting says, and the bare smtplib failures only as
  failed connect and login operations;
- the per-category success-rate panel shows the server-down run's
  categories (and "(none)") at 0%;
- the alerts the demo's failure mix reaches (success rate below 95%, the
  retryable and permanent error bursts, refused recipients at one mailbox
  provider, the failing connect to the dead server) are pending or firing,
  so are the ones the server-down run reaches (the success-rate alerts and
  error bursts through Django's accounting, EmailSmtpConnectionFailing for
  connect and login), and the ones the webhooks reach (the webhook run's
  10% bounce rate past both bounce thresholds, its complaint rate past both,
  its hard bounces at gmail.com and no other mailbox provider, the refused
  calls of both runs, the demo's hard bounces at "other"), and the ones none
  can reach stay quiet;
- the delivery rules compute from the webhooks what the run fed: a 10%
  bounce rate, 25% hard bounces at gmail.com, a delivery p95 under a minute.

Prometheus evaluates every second, so rates over 5m windows have their two
samples after a few seconds; the test polls until everything holds (or a
deadline passes and it names every expression still without data).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import pytest
import yaml

from tests.collector_config.collector_checks import (
    CONFIG_DIR,
    REPO,
    grafana_to_promql,
    load_yaml,
    split_label_values,
)

QUICKSTART = REPO / "examples" / "quickstart.py"
SERVER_DOWN_APP = Path(__file__).with_name("server_down_app.py")
WEBHOOKS_APP = Path(__file__).with_name("delivery_webhooks_app.py")
RULE_FILES = sorted((CONFIG_DIR / "prometheus" / "rules").glob("*.yml"))

# service.name of the demo, and the scrape job name: a plain scrape sets `job`
# from the job name (the exporter puts service.name on target_info only), the
# OTLP routes set it from service.name; the two agree here as in production.
JOB = "shop-mailer"
# The server-down run's service.name and scrape job.
DOWN_JOB = "shop-mailer-server-down"

# Everything below must hold within this many seconds of Prometheus being
# ready (in practice 10-20 s: the retryable-burst alert needs ten failures
# inside its window, one per demo round).
DEADLINE_S = 60.0
# The demo sends for this long unless stopped (it is stopped by the fixture).
DEMO_RUN_FOR_S = 240

# Alerts by what the two runs' traffic does to them, each with the label sets
# it must be pending or firing for.
#
# The demo: each round attempts seven messages of which three fail: the
# greylisted first attempt (451, retryable), the welcome mail to a mistyped
# address (550, permanent) and the alert Django could not get to the dead
# server (connection_refused, retryable, counted by the Django layer); four
# recipients at domain "other" of which three are refused. Of its seven SMTP
# connects a round, all to 127.0.0.1, the one to the dead port fails (14%).
#
# The server-down run: each round five messages handed to Django, all failed
# -- three connection_refused (retryable), two 535 (permanent) -- and no
# success series at all; connects to 127.0.0.1: two of four fail, logins:
# two of two.
EXPECTED_ACTIVE: dict[str, list[dict[str, str]]] = {
    # Demo: 57% success < 95%; server-down run: 0%. Both far above 10
    # attempts per 5 minutes.
    "EmailSendSuccessRateLow": [{"job": JOB}, {"job": DOWN_JOB}],
    "EmailProviderSuccessRateLow": [
        {"job": JOB, "email_system": "smtp"},
        {"job": DOWN_JOB, "email_system": "smtp"},
    ],
    # Two (demo) and three (server-down) retryable failures a round: 10 per
    # 5 minutes after five and four rounds.
    "EmailRetryableErrorBurst": [
        {"job": JOB, "email_system": "smtp", "email_error_retryable": "true"},
        {"job": DOWN_JOB, "email_system": "smtp", "email_error_retryable": "true"},
    ],
    # One (demo) and two (server-down: the refused logins) permanent
    # failures a round: 5 per 5 minutes after five and three rounds.
    "EmailPermanentErrorBurst": [
        {"job": JOB, "email_system": "smtp", "email_error_retryable": "false"},
        {"job": DOWN_JOB, "email_system": "smtp", "email_error_retryable": "false"},
    ],
    # Three of four recipients at "other" refused, more than 20 per 30 minutes.
    "EmailRecipientsRejectedHigh": [{"job": JOB, "email_recipient_domain": "other"}],
    # The dead server's refused connects (14% of the demo's, 50% of the
    # server-down run's) and the refused logins (100%).
    "EmailSmtpConnectionFailing": [
        {"job": JOB, "server_address": "127.0.0.1", "email_operation_name": "connect"},
        {"job": DOWN_JOB, "server_address": "127.0.0.1", "email_operation_name": "connect"},
        {"job": DOWN_JOB, "server_address": "127.0.0.1", "email_operation_name": "login"},
    ],
    # The webhook run: 10 hard bounces in 100 finished messages a round,
    # above 2% and 5%, with 100 finished messages (the guard) after one round.
    "EmailBounceRateHigh": [{"job": JOB, "email_system": "postmark"}],
    "EmailBounceRateCritical": [{"job": JOB, "email_system": "postmark"}],
    # One complaint in 90 delivered (1.1%), above 0.1% and 0.3%, once 1000
    # were delivered (12 rounds).
    "EmailComplaintRateHigh": [{"job": JOB, "email_system": "postmark"}],
    "EmailComplaintRateCritical": [{"job": JOB, "email_system": "postmark"}],
    # All 10 hard bounces at gmail.com: 10 of its 40 finished messages. The
    # demo replays Mailgun webhooks each round, one delivered and one hard
    # bounce at greylist.example ("other"): 10 after ten rounds.
    "EmailHardBouncesByMailboxProvider": [
        {"job": JOB, "email_system": "postmark", "email_recipient_domain": "gmail.com"},
        {"job": JOB, "email_system": "mailgun", "email_recipient_domain": "other"},
    ],
    # One call a round with the wrong password (the webhook run), with a
    # wrong signing key (the demo): 5 after five rounds.
    "EmailWebhooksRefused": [
        {"job": JOB, "email_system": "postmark", "error_type": "credentials"},
        {"job": JOB, "email_system": "mailgun", "error_type": "signature"},
    ],
}
EXPECTED_QUIET = {
    # Sends to localhost take about a millisecond, far below 5 s.
    "EmailSendLatencyHigh",
    # These compare with 1 day, 1 week or 5 hours ago: no such history here.
    "EmailNoMessagesSent",
    "EmailSendVolumeDrop",
    "EmailSuccessRateTrendingDown",
    # The webhook run delivers within 2 to 40 seconds of the send, far below
    # 5 minutes.
    "EmailDeliveryLatencyHigh",
    # Compares with the 6 hours before: no such history here (and one
    # deferral in 101 attempts is 1%).
    "EmailDeferralsGrowing",
}


# ---------------------------------------------------------------------------
# Processes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """If pytest itself is killed, take the child along (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A subprocess with its output in a log file, stopped for sure."""

    def __init__(self, name: str, argv: list[str], log: Path, **kwargs: Any) -> None:
        self.name = name
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            **kwargs,
        )

    def tail(self, lines: int = 40) -> str:
        self._log_file.flush()
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            pytest.fail(f"{self.name} exited with code {code}:\n{self.tail()}")

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            self._log_file.close()


class Prometheus:
    """Prometheus' HTTP API, and polling against a shared deadline."""

    def __init__(self, url: str, children: list[Child], deadline: float) -> None:
        self.url = url
        self.children = children
        self.deadline = deadline

    def get(self, path: str, **params: str) -> Any:
        """The `data` of an API answer; raises ValueError with the API's error."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=5) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: a bad query
            answer = json.load(error)
        if answer.get("status") != "success":
            raise ValueError(f"{answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's samples as [{"metric": {...}, "value": float}]."""
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": float(data["result"][1])}]
        if data["resultType"] != "vector":
            raise ValueError(f"expected an instant vector, got a {data['resultType']}")
        return [
            {"metric": sample["metric"], "value": float(sample["value"][1])}
            for sample in data["result"]
        ]

    def poll(self, check: Callable[[], list[str]]) -> list[str]:
        """Run `check` every second until it reports no problem or the
        deadline passes; return its last problems."""
        while True:
            for child in self.children:
                child.check_alive()
            problems = check()
            if not problems or time.monotonic() > self.deadline:
                return problems
            time.sleep(1)


def _prometheus_config(demo_port: int, down_port: int, webhooks_port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{demo_port}", f"127.0.0.1:{webhooks_port}"]}
                ],
            },
            {"job_name": DOWN_JOB, "static_configs": [{"targets": [f"127.0.0.1:{down_port}"]}]},
        ],
    }


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: apt-get install -y prometheus")
    assert RULE_FILES, "no rule files under collector-config/prometheus/rules"
    work = tmp_path_factory.mktemp("prometheus-e2e")
    demo_port, down_port, webhooks_port = _free_port(), _free_port(), _free_port()
    prometheus_port = _free_port()
    (work / "prometheus.yml").write_text(
        yaml.safe_dump(_prometheus_config(demo_port, down_port, webhooks_port), sort_keys=False),
        encoding="utf-8",
    )
    # Only what the demo needs: no OTLP endpoint (it would export there
    # instead of printing), no disabled instrumentations from the caller.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_SERVICE_NAME=JOB, PYTHONUNBUFFERED="1")

    children: list[Child] = []
    try:
        children.append(
            Child(
                "the demo",
                [
                    sys.executable,
                    str(QUICKSTART),
                    "--repeat-for",
                    str(DEMO_RUN_FOR_S),
                    "--prometheus-port",
                    str(demo_port),
                ],
                work / "demo.log",
                cwd=REPO,
                env=env,
            )
        )
        children.append(
            Child(
                "the server-down run",
                [
                    sys.executable,
                    str(SERVER_DOWN_APP),
                    "--repeat-for",
                    str(DEMO_RUN_FOR_S),
                    "--prometheus-port",
                    str(down_port),
                ],
                work / "server-down.log",
                cwd=REPO,
                env={**env, "OTEL_SERVICE_NAME": DOWN_JOB},
            )
        )
        children.append(
            Child(
                "the webhook run",
                [
                    sys.executable,
                    str(WEBHOOKS_APP),
                    "--repeat-for",
                    str(DEMO_RUN_FOR_S),
                    "--prometheus-port",
                    str(webhooks_port),
                ],
                work / "webhooks.log",
                cwd=REPO,
                env=env,
            )
        )
        children.append(
            Child(
                "prometheus",
                [
                    binary,
                    f"--config.file={work / 'prometheus.yml'}",
                    f"--storage.tsdb.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                work / "prometheus.log",
                cwd=work,
            )
        )
        url = f"http://127.0.0.1:{prometheus_port}"
        ready_by = time.monotonic() + 20
        while True:
            for child in children:
                child.check_alive()
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:  # refused while starting, 503 while loading
                pass
            if time.monotonic() > ready_by:
                pytest.fail(f"prometheus not ready after 20 s:\n{children[-1].tail()}")
            time.sleep(0.2)
        yield Prometheus(url, children, deadline=time.monotonic() + DEADLINE_S)
    finally:
        for child in reversed(children):
            child.stop()


# ---------------------------------------------------------------------------
# What to query


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def _fill_variables(expr: str, job: str = JOB) -> str:
    """A Grafana query as Grafana runs it with one service (the demo's,
    unless told) selected and "All" for the other variables."""
    expr = re.sub(r"\$\{job(?::[A-Za-z]+)?\}|\$job\b", job, expr)
    expr = expr.replace("$__tags", f'job="{job}"')
    return grafana_to_promql(expr)


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # inside collapsed rows


def _is_prometheus(datasource: Any) -> bool:
    return isinstance(datasource, dict) and datasource.get("type") == "prometheus"


def _dashboard_queries(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for name, dashboard in dashboards.items():
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                if _is_prometheus(target.get("datasource", panel.get("datasource"))):
                    where = f"{name}: panel {panel['title']!r} {target['refId']}"
                    found.append((where, _fill_variables(target["expr"])))
    return found


def _variable_selectors(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(where, selector, label) of every `label_values(selector, label)`."""
    found = []
    for name, dashboard in dashboards.items():
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query" and _is_prometheus(variable.get("datasource")):
                selector, label = split_label_values(variable["definition"]) or (None, "")
                assert selector, f"{name}: variable {variable['name']} has no selector"
                found.append(
                    (f"{name}: variable {variable['name']}", _fill_variables(selector), label)
                )
    return found


def _datasource_queries(datasources: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for ds in datasources:
        for query in (ds.get("jsonData", {}).get("tracesToMetrics") or {}).get("queries", []):
            # `$$` is provisioning's escaped `$`.
            expr = _fill_variables(query["query"].replace("$$", "$"))
            found.append((f"datasource {ds['name']}: tracesToMetrics {query['name']!r}", expr))
    return found


def _no_number(prometheus: Prometheus, expr: str) -> str | None:
    """Why `expr` has no data, or None when it returns a number."""
    try:
        samples = prometheus.query(expr)
    except ValueError as error:
        return f"error {error}"
    if not samples:
        return "empty result"
    if not any(math.isfinite(sample["value"]) for sample in samples):
        return f"only NaN/Inf: {samples}"
    return None


def _problems_of(prometheus: Prometheus, queries: list[tuple[str, str]]) -> Callable[[], list[str]]:
    def check() -> list[str]:
        return [
            f"{where}: {why}\n    {expr}"
            for where, expr in queries
            if (why := _no_number(prometheus, expr)) is not None
        ]

    return check


# ---------------------------------------------------------------------------
# Tests


def test_demo_is_scraped_as_the_job_the_rules_group_by(prometheus: Prometheus) -> None:
    checks = {
        "the scrape targets are up": f'count(up{{job="{JOB}"}} == 1) == 2',
        "service.name reaches target_info": f'target_info{{job="{JOB}", service_name="{JOB}"}}',
        "messages go out": f'email_client_sent_messages_total{{job="{JOB}", error_type=""}}',
        "messages fail": f'email_client_sent_messages_total{{job="{JOB}", error_type!=""}}',
        "recipients are refused": (
            f'email_client_recipients_total{{job="{JOB}", email_recipient_status="rejected"}}'
        ),
        "delivery events arrive from the webhook run": (
            f'email_delivery_events_total{{job="{JOB}", email_system="postmark",'
            ' email_delivery_event="bounced", email_delivery_bounce_type="hard"}'
        ),
        "the server-down run is scraped": f'up{{job="{DOWN_JOB}"}} == 1',
        "its service.name reaches target_info": (
            f'target_info{{job="{DOWN_JOB}", service_name="{DOWN_JOB}"}}'
        ),
    }
    problems = prometheus.poll(_problems_of(prometheus, list(checks.items())))
    assert problems == [], "\n".join(problems)


def test_server_down_run_is_counted_as_the_contract_says(prometheus: Prometheus) -> None:
    """Messages Django never got to a server are counted failed -- on
    email_system="smtp", with error_type and email_error_retryable, with
    their category, and without email_operation_name -- while smtplib used
    directly leaves only failed connect and login operations."""
    sent = f'email_client_sent_messages_total{{job="{DOWN_JOB}", email_system="smtp"'
    ops = f'email_client_operation_duration_seconds_count{{job="{DOWN_JOB}", email_system="smtp"'
    checks = {
        "dead server, categorised": (
            f'{sent}, error_type="connection_refused", email_error_retryable="true",'
            ' email_category="password_reset", email_operation_name=""} > 0'
        ),
        "dead server, no category": (
            f'{sent}, error_type="connection_refused", email_error_retryable="true",'
            ' email_category="", email_operation_name=""} > 0'
        ),
        "login refused": (
            f'{sent}, error_type="535", email_error_retryable="false",'
            ' email_category="newsletter", email_operation_name=""} > 0'
        ),
        "failed connects": (
            f'{ops}, email_operation_name="connect", error_type="connection_refused"}} > 0'
        ),
        "refused logins": f'{ops}, email_operation_name="login", error_type="535"}} > 0',
    }
    problems = prometheus.poll(_problems_of(prometheus, list(checks.items())))
    assert problems == [], "\n".join(problems)
    # Never one message out, and no send operation: the framework counted
    # every message itself.
    assert prometheus.query(f'{sent}, error_type=""}}') == []
    assert prometheus.query(f'{ops}, email_operation_name=~"send|send_batch"}}') == []
    # Each of the five messages a round hands to Django, once: three to the
    # dead server, then two refused at login (a scrape may fall between the
    # two calls of a round).
    by_error = {
        sample["metric"]["error_type"]: sample["value"]
        for sample in prometheus.query(f"sum by (error_type) ({sent}}})")
    }
    assert set(by_error) == {"connection_refused", "535"}, by_error
    rounds = by_error["535"] / 2
    assert rounds >= 1 and by_error["connection_refused"] in (3 * rounds, 3 * rounds + 3), by_error


def _panel_expr(dashboards: dict[str, dict[str, Any]], title: str) -> str:
    (expr,) = [
        target["expr"]
        for dashboard in dashboards.values()
        for panel in _panels(dashboard.get("panels", []))
        if panel["title"] == title
        for target in panel.get("targets", [])
    ]
    return expr


def test_category_success_rate_panel(
    prometheus: Prometheus, dashboards: dict[str, dict[str, Any]]
) -> None:
    """The per-category success rate shows every kind of mail of a service,
    "(none)" for messages without a category, and 0% -- not a gap -- for
    a category none of whose messages went out."""
    expr = _panel_expr(dashboards, "Success rate by category (email.category)")
    down, demo = _fill_variables(expr, DOWN_JOB), _fill_variables(expr)
    expected = {"password_reset": 0.0, "(none)": 0.0, "newsletter": 0.0}

    def check() -> list[str]:
        problems = []
        try:
            got = {s["metric"].get("email_category"): s["value"] for s in prometheus.query(down)}
            shown = {s["metric"].get("email_category"): s["value"] for s in prometheus.query(demo)}
        except ValueError as error:
            return [f"error {error}"]
        if got != expected:
            problems.append(f"server-down run: {got}, expected {expected}\n    {down}")
        # The demo's mail, whatever its categories: every series is a share,
        # and no series goes without a category label.
        if not shown or not all(0 <= v <= 1 for v in shown.values()) or None in shown:
            problems.append(f"demo: {shown}\n    {demo}")
        return problems

    problems = prometheus.poll(check)
    assert problems == [], "\n".join(problems)


def test_shipped_rules_load_and_evaluate_without_errors(prometheus: Prometheus) -> None:
    shipped = {rule.get("record") or rule["alert"] for rule in _rules()}

    def check() -> list[str]:
        loaded = {}
        for group in prometheus.get("/api/v1/rules")["groups"]:
            for rule in group["rules"]:
                loaded[rule["name"]] = rule
        problems = [f"{name}: not loaded" for name in sorted(shipped - set(loaded))]
        problems += [f"{name}: not shipped, yet loaded" for name in sorted(set(loaded) - shipped)]
        for name, rule in sorted(loaded.items()):
            if rule.get("health") != "ok":
                problems.append(f"{name}: health {rule.get('health')} {rule.get('lastError', '')}")
        return problems

    problems = prometheus.poll(check)
    assert problems == [], "\n".join(problems)


def test_every_recording_rule_returns_data(prometheus: Prometheus) -> None:
    queries = []
    for rule in _rules():
        if "record" in rule:
            queries.append((f"rule {rule['record']} (its expression)", rule["expr"]))
            queries.append((f"rule {rule['record']} (recorded series)", rule["record"]))
    assert queries
    problems = prometheus.poll(_problems_of(prometheus, queries))
    assert problems == [], "\n".join(problems)


def test_every_dashboard_query_returns_data(
    prometheus: Prometheus,
    dashboards: dict[str, dict[str, Any]],
    datasources: list[dict[str, Any]],
) -> None:
    queries = _dashboard_queries(dashboards) + _datasource_queries(datasources)
    variables = _variable_selectors(dashboards)
    assert queries and variables
    for where, expr in queries:
        assert "$" not in expr, f"{where}: unresolved variable in {expr!r}"
    data_check = _problems_of(prometheus, queries)

    def check() -> list[str]:
        problems = data_check()
        for where, selector, label in variables:
            try:
                samples = prometheus.query(selector)
            except ValueError as error:
                problems.append(f"{where}: error {error}\n    {selector}")
                continue
            if not {sample["metric"].get(label) for sample in samples} - {None, ""}:
                problems.append(f"{where}: no values of {label!r} in\n    {selector}")
        return problems

    problems = prometheus.poll(check)
    assert problems == [], "\n".join(problems)


def test_every_alert_is_accounted_for() -> None:
    """A new alert needs a decision here: should the demo reach it or not."""
    shipped = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert shipped == set(EXPECTED_ACTIVE) | EXPECTED_QUIET
    assert not set(EXPECTED_ACTIVE) & EXPECTED_QUIET


def test_error_rate_alerts_are_pending_or_firing(prometheus: Prometheus) -> None:
    def active() -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for alert in prometheus.get("/api/v1/alerts")["alerts"]:
            if alert["state"] in ("pending", "firing"):
                found.setdefault(alert["labels"]["alertname"], []).append(alert)
        return found

    def check() -> list[str]:
        now = active()
        problems = []
        for name, label_sets in EXPECTED_ACTIVE.items():
            for labels in label_sets:
                alerts = now.get(name, [])
                if not any(labels.items() <= alert["labels"].items() for alert in alerts):
                    problems.append(f"{name}{labels} is neither pending nor firing")
        return problems

    problems = prometheus.poll(check)
    assert problems == [], "\n".join(problems) + f"\nactive: {sorted(active())}"
    # With `for:` of 5 to 15 minutes they are pending at this point (the
    # issue accepts either state); the ones out of the runs' reach are quiet.
    loud = EXPECTED_QUIET & set(active())
    assert not loud, f"active although the demo cannot reach them: {sorted(loud)}"
    # EmailSmtpConnectionFailing names the server and the step: not the
    # demo's healthy login, and no starttls (nobody uses it here).
    session = {
        (alert["labels"]["job"], alert["labels"]["email_operation_name"])
        for alert in active().get("EmailSmtpConnectionFailing", [])
    }
    assert session == {(JOB, "connect"), (DOWN_JOB, "connect"), (DOWN_JOB, "login")}, session


def _active_alerts(prometheus: Prometheus, name: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in prometheus.get("/api/v1/alerts")["alerts"]
        if alert["labels"]["alertname"] == name and alert["state"] in ("pending", "firing")
    ]


def test_recorded_webhooks_drive_the_delivery_rules_and_the_bounce_alert(
    prometheus: Prometheus,
) -> None:
    """The webhook run's Postmark calls, through DeliveryWebhook, reach
    Prometheus as the contract's delivery metrics; the recording rules turn
    them into the 10% bounce rate they are (90 delivered, 10 hard bounces),
    25% hard bounces at gmail.com, a 1.1% complaint rate, a delivery p95 of
    2 to 40 seconds; and EmailBounceRateCritical is pending (its `for:` is
    15 minutes) or firing for postmark, with the rate as its value."""
    where = f'{{job="{JOB}", email_system="postmark"}}'
    expected = {
        f"job_email_system:email_delivery_bounce:ratio_rate1h{where}": (0.09, 0.11),
        f"job_email_system:email_delivery_complaint:ratio_rate1d{where}": (0.009, 0.013),
        f"job_email_system:email_delivery_deferral:ratio_rate30m{where}": (0.007, 0.013),
        f"job_email_system:email_delivery_duration_seconds:p95_30m{where}": (2, 60),
        (
            "job_email_system_email_recipient_domain:email_delivery_hard_bounce:ratio_rate1h"
            f'{{job="{JOB}", email_system="postmark", email_recipient_domain="gmail.com"}}'
        ): (0.22, 0.28),
        (
            "job_email_system_error_type:email_delivery_webhooks_refused:rate5m"
            f'{{job="{JOB}", email_system="postmark", error_type="credentials"}}'
        ): (0.001, 1.5),  # one a second, divided by 5m while there is less data
    }

    def check() -> list[str]:
        problems = []
        for expr, (low, high) in expected.items():
            try:
                values = [sample["value"] for sample in prometheus.query(expr)]
            except ValueError as error:
                problems.append(f"{expr}: error {error}")
                continue
            if len(values) != 1 or not low <= values[0] <= high:
                problems.append(f"{expr}: {values}, expected one value in [{low}, {high}]")
        alerts = _active_alerts(prometheus, "EmailBounceRateCritical")
        if not any(
            alert["labels"].get("job") == JOB
            and alert["labels"].get("email_system") == "postmark"
            and 0.09 <= float(alert["value"]) <= 0.11
            for alert in alerts
        ):
            problems.append(f"EmailBounceRateCritical is not pending or firing at 10%: {alerts}")
        return problems

    problems = prometheus.poll(check)
    assert problems == [], "\n".join(problems)
    # Hard bounces at gmail.com only: no other mailbox provider is named.
    domains = {
        alert["labels"]["email_recipient_domain"]
        for alert in _active_alerts(prometheus, "EmailHardBouncesByMailboxProvider")
        if alert["labels"]["email_system"] == "postmark"
    }
    assert domains == {"gmail.com"}, domains
    # Only the wrong password is refused: the run's real calls all pass.
    reasons = {
        sample["metric"]["error_type"]
        for sample in prometheus.query(
            f'email_delivery_webhooks_refused_total{{job="{JOB}", email_system="postmark"}}'
        )
    }
    assert reasons == {"credentials"}, reasons
