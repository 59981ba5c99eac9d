"""The ready-made endpoints around ``DeliveryWebhook.respond`` (WSGI, ASGI,
Django, Flask) driven by each framework's own request machinery, and
django-anymail's ``tracking`` signal fed by anymail's real webhook view."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Tuple

import django
import pytest
from django.conf import settings

from opentelemetry.instrumentation.email.delivery import mounts
from tests.conftest import Telemetry
from tests.delivery import kit

if not settings.configured:  # the framework tests may have configured it first
    settings.configure(USE_TZ=True)
    django.setup()

SECRET = "hooks:s3cret"
AUTH = "Basic " + base64.b64encode(SECRET.encode()).decode()
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _delivery() -> bytes:
    return json.dumps(
        {
            "RecordType": "Delivery",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "Recipient": "john@gmail.com",
            "DeliveredAt": datetime.now(timezone.utc).isoformat(),
            "Metadata": {"otel_traceparent": TRACEPARENT, "otel_sent_at": "1764612000000"},
        }
    ).encode()


@pytest.fixture
def hook(telemetry: Telemetry) -> Iterator[Any]:
    yield kit.hook(telemetry, "postmark", SECRET, max_body_bytes=4096)


# (method, body, authorization) -> expected status, for every mount.
CASES: List[Tuple[str, bytes, str, int]] = [
    ("POST", _delivery(), AUTH, 200),
    ("POST", _delivery(), "Basic " + base64.b64encode(b"hooks:nope").decode(), 401),
    ("POST", b"{not json", AUTH, 400),
    ("POST", b"x" * 5000, AUTH, 413),
    ("HEAD", b"", "", 200),
    ("GET", b"", "", 405),
]


def _assert_outcome(telemetry: Telemetry, method: str, expected: int) -> None:
    spans = kit.deliver_spans(telemetry, "postmark")
    if method == "POST" and expected == 200:
        assert len(spans) == 1
        assert spans[0].links[0].context.span_id == int(TRACEPARENT[36:52], 16)
    else:
        assert not spans
        refused = telemetry.counter("email.delivery.webhooks.refused")
        assert refused == (1 if method == "POST" else 0)


@pytest.mark.parametrize("method, body, authorization, expected", CASES)
def test_wsgi(
    telemetry: Telemetry, hook: Any, method: str, body: bytes, authorization: str, expected: int
) -> None:
    from werkzeug.test import Client

    client = Client(mounts.wsgi_app(hook))
    headers = {"Authorization": authorization} if authorization else {}
    response = client.open("/hooks/postmark", method=method, data=body, headers=headers)
    assert response.status_code == expected
    _assert_outcome(telemetry, method, expected)


@pytest.mark.parametrize("method, body, authorization, expected", CASES)
def test_asgi(
    telemetry: Telemetry, hook: Any, method: str, body: bytes, authorization: str, expected: int
) -> None:
    import httpx

    async def call() -> int:
        transport = httpx.ASGITransport(app=mounts.asgi_app(hook))
        async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
            headers = {"Authorization": authorization} if authorization else {}
            response = await client.request(method, "/postmark", content=body, headers=headers)
            return response.status_code

    assert asyncio.run(call()) == expected
    _assert_outcome(telemetry, method, expected)


@pytest.mark.parametrize("method, body, authorization, expected", CASES)
def test_django_view(
    telemetry: Telemetry, hook: Any, method: str, body: bytes, authorization: str, expected: int
) -> None:
    from django.test import RequestFactory

    extra: Dict[str, Any] = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    request = RequestFactory().generic(
        method, "/hooks/postmark", data=body, content_type="application/json", **extra
    )
    response = mounts.django_view(hook)(request)
    assert response.status_code == expected
    _assert_outcome(telemetry, method, expected)


@pytest.mark.parametrize("method, body, authorization, expected", CASES)
def test_flask_blueprint(
    telemetry: Telemetry, hook: Any, method: str, body: bytes, authorization: str, expected: int
) -> None:
    import flask

    app = flask.Flask(__name__)
    app.register_blueprint(mounts.flask_blueprint(hook), url_prefix="/hooks/postmark")
    headers = {"Authorization": authorization} if authorization else {}
    response = app.test_client().open("/hooks/postmark/", method=method, data=body, headers=headers)
    assert response.status_code == expected
    _assert_outcome(telemetry, method, expected)


def test_anymail_tracking_signal_is_recorded(telemetry: Telemetry) -> None:
    """anymail's own Postmark tracking view verifies the call and sends its
    signal; the package records the event, linked through the Metadata
    anymail hands over."""
    from anymail.exceptions import AnymailWebhookValidationFailure
    from anymail.webhooks.postmark import PostmarkTrackingWebhookView
    from django.test import RequestFactory, override_settings

    from opentelemetry.instrumentation.email.delivery.anymail import (
        record_anymail_tracking,
        stop_recording_anymail_tracking,
    )

    record_anymail_tracking(**telemetry.providers())
    try:
        with override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET}):
            body = json.loads(_delivery())
            body["RecordType"] = "Bounce"
            body["Type"] = "HardBounce"
            body["Email"] = "john@gmail.com"
            body["BouncedAt"] = body.pop("DeliveredAt")
            body["Details"] = "smtp;550 5.1.1 The email account does not exist"
            request = RequestFactory().post(
                "/anymail/postmark/tracking/",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=AUTH,
            )
            response = PostmarkTrackingWebhookView.as_view()(request)
            assert response.status_code == 200
            forged = RequestFactory().post(
                "/anymail/postmark/tracking/",
                data=json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"x:y").decode(),
            )
            # anymail refuses it (Django answers its SuspiciousOperation with 400).
            with pytest.raises(AnymailWebhookValidationFailure):
                PostmarkTrackingWebhookView.as_view()(forged)
    finally:
        stop_recording_anymail_tracking()
    (span,) = kit.deliver_spans(telemetry, "postmark")
    assert span.attributes["email.delivery.event"] == "bounced"
    assert span.attributes["email.smtp.enhanced_status"] == "5.1.1"
    assert span.attributes["email.delivery.bounce.type"] == "hard"
    assert span.links[0].context.trace_id == int(TRACEPARENT[3:35], 16)
