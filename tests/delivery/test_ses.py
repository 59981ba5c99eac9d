"""Amazon SES: a send through boto3 (or aiobotocore) carries the trace
context as two message tags; SES publishes its events with ``mail.tags``
to an SNS topic, and SNS posts them, signed with its certificate (here a
self-signed one the test makes, served by ``fetch``); each is verified,
recorded and linked to the send."""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from opentelemetry.instrumentation.email.delivery import WebhookVerificationError
from opentelemetry.instrumentation.email.delivery.receivers import ses as receiver
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers.http_server import ProviderServer
from tests.providers.ses_support import (
    JSON,
    MESSAGE_ID,
    V1_PATH,
    V2_BULK_PATH,
    XML,
    aio_client,
    client,
    moto_url,
    v1_bulk,
    v1_params,
)

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
HEADERS = {"x-amz-sns-message-type": "Notification", "Content-Type": "text/plain; charset=UTF-8"}
APP_TAGS = [{"Name": "kind", "Value": "receipts"}]


@pytest.fixture(scope="session")
def moto() -> str:
    """moto's SES and SESv2 (tests/providers/conftest.py's fixture)."""
    return moto_url()


# -- SNS, as the test plays it ------------------------------------------------------------------


def _certificate(key: rsa.RSAPrivateKey, valid_from: datetime, valid_to: datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@functools.cache
def _key(name: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def _pem(name: str = "sns", expired: bool = False) -> bytes:
    now = datetime.now(timezone.utc)
    if expired:
        return _certificate(_key(name), now - timedelta(days=30), now - timedelta(days=1))
    return _certificate(_key(name), now - timedelta(days=1), now + timedelta(days=1))


class Sns:
    """Serves the signing certificate and the subscription confirmation to
    the receiver's ``fetch``, and records what it was asked for."""

    def __init__(self, pem: Optional[bytes] = None) -> None:
        self.pem = pem or _pem()
        self.fetched: List[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        if url.endswith(".pem"):
            return self.pem
        return b"<ConfirmSubscriptionResponse/>"


def canonical(message: Dict[str, Any]) -> bytes:
    """The string SNS signs, per "Verifying the signatures of Amazon SNS messages"."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def sign(message: Dict[str, Any], key: Optional[rsa.RSAPrivateKey] = None) -> Dict[str, Any]:
    digest = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    signature = (key or _key("sns")).sign(canonical(message), padding.PKCS1v15(), digest)
    message["Signature"] = base64.b64encode(signature).decode()
    return message


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(
    message: Any,
    *,
    kind: str = "Notification",
    version: str = "1",
    published: Optional[datetime] = None,
    sign_with: Optional[rsa.RSAPrivateKey] = None,
    **fields: Any,
) -> Dict[str, Any]:
    """An SNS message of ``kind`` carrying ``message`` (an SES event:
    JSON-encoded), published at ``published`` (now), signed."""
    sample = "sns_notification" if kind == "Notification" else "sns_subscription_confirmation"
    body: Dict[str, Any] = kit.sample("ses", sample)
    body.pop("Subject", None)  # SES event publishing sets none
    body.update(
        Type=kind,
        MessageId=str(uuid.uuid4()),
        TopicArn=TOPIC,
        Message=message if isinstance(message, str) else json.dumps(message),
        Timestamp=_iso(published or datetime.now(timezone.utc)),
        SignatureVersion=version,
        SigningCertURL=CERT_URL,
    )
    if kind != "Notification":
        body["SubscribeURL"] = body["SubscribeURL"].replace("us-west-2", "us-east-1")
    body.update(fields)
    return sign(body, sign_with)


def encode(message: Dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def ses_event(name: str, message_id: str, tags: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """SES's sample event ``name`` about the message just sent: its id, the
    send's tags as SES lists them (``{name: [value]}``, after its own), the
    event just now."""
    event: Dict[str, Any] = kit.sample("ses", name)
    now = datetime.now(timezone.utc)
    mail = event["mail"]
    mail["messageId"] = message_id
    mail["timestamp"] = _iso(now - timedelta(seconds=3))
    mail["destination"] = ["john@gmail.com"]
    mail.setdefault("tags", {}).update({k: [v] for k, v in (tags or {}).items()})
    kind = event.get("eventType") or event["notificationType"]
    details = event.get({"DeliveryDelay": "deliveryDelay"}.get(kind, kind.lower()))
    if isinstance(details, dict):
        if "timestamp" in details:
            details["timestamp"] = _iso(now)
        for field in ("bouncedRecipients", "complainedRecipients", "delayedRecipients"):
            for recipient in details.get(field, [])[:1]:
                recipient["emailAddress"] = "john@gmail.com"
        if "recipients" in details:
            details["recipients"] = ["john@gmail.com"]
    return event


def hook(telemetry: Telemetry, sns: Sns, secret: Optional[str] = TOPIC, **kwargs: Any) -> Any:
    return kit.hook(telemetry, "ses", secret, fetch=sns.fetch, **kwargs)


# -- what boto3 sent -----------------------------------------------------------------------------


def capture(ses: Any) -> List[bytes]:
    """The bodies of the requests ``ses`` sends, as they leave botocore."""
    bodies: List[bytes] = []

    def before_send(request: Any, **kwargs: Any) -> None:
        body = request.body
        bodies.append(body.encode() if isinstance(body, str) else bytes(body or b""))

    ses.meta.events.register("before-send", before_send)
    return bodies


def query_tags(body: bytes, member: str = "Tags") -> List[Tuple[str, str]]:
    """The tags in a query-protocol (SES v1) form body, in order."""
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    tags = []
    index = 1
    while f"{member}.member.{index}.Name" in form:
        tags.append((form[f"{member}.member.{index}.Name"], form[f"{member}.member.{index}.Value"]))
        index += 1
    return tags


def json_tags(body: bytes, member: str = "EmailTags") -> List[Tuple[str, str]]:
    return [(t["Name"], t["Value"]) for t in json.loads(body).get(member, [])]


def carried(tags: List[Tuple[str, str]], send: Any) -> Dict[str, str]:
    """The propagated tags, after the app's own, hold the send span's context."""
    found = dict(tags)
    assert [name for name, _ in tags][-2:] == ["otel_traceparent", "otel_sent_at"]
    kit.assert_carried(found, send)
    return {k: v for k, v in found.items() if k.startswith("otel_")}


# -- send and echo -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_v1_send_carries_tags_and_each_event_links_back(
    telemetry: Telemetry, moto: str, version: str
) -> None:
    ses = client("ses", moto)
    bodies = capture(ses)
    params = v1_params(Source="orders@shop.example", Tags=copy.deepcopy(APP_TAGS))
    untouched = copy.deepcopy(params)
    message_id = ses.send_email(**params)["MessageId"]
    assert params == untouched  # the app's parameters are never changed
    send = telemetry.span("send ses")
    assert send.attributes["email.provider.message_id"] == message_id
    assert send.attributes["email.category"] == "receipts"  # the app's tag stays first
    tags = query_tags(bodies[-1])
    assert tags[0] == ("kind", "receipts")
    echoed = {"kind": "receipts", **carried(tags, send)}

    sns = Sns()
    webhook = hook(telemetry, sns)
    events = []
    for name in ("delivery", "bounce", "complaint"):
        body = encode(envelope(ses_event(name, message_id, echoed), version=version))
        events += webhook.handle(body, HEADERS)
    spans = kit.assert_recorded(
        telemetry,
        events,
        "ses",
        [
            {
                "email.delivery.event": "delivered",
                "email.provider.message_id": message_id,
                "email.category": "receipts",
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.to.address": ("j***@gmail.com",),
            },
            {"email.delivery.event": "complained", "email.provider.message_id": message_id},
        ],
        send,
    )
    assert not any("email.delivery.time" in s.attributes for s in spans)  # started at the event
    assert len(telemetry.values("email.delivery.duration")) == 2  # delivered, bounced
    assert sns.fetched == [CERT_URL]  # one certificate fetch, then kept


def test_the_request_is_signed_with_the_tags(
    telemetry: Telemetry, moto: str, caplog: pytest.LogCaptureFixture
) -> None:
    """botocore signs the body after the tags were added: the payload hash
    of its canonical request is the hash of the body that was sent."""
    caplog.set_level(logging.DEBUG, logger="botocore.auth")
    for service in ("ses", "sesv2"):
        ses = client(service, moto)
        bodies = capture(ses)
        caplog.clear()
        if service == "ses":
            ses.send_email(**v1_params(Source="orders@shop.example"))
        else:
            ses.send_email(
                FromEmailAddress="orders@shop.example",
                Destination={"ToAddresses": ["john@gmail.com"]},
                Content={"Simple": {"Subject": {"Data": "Qx"}, "Body": {"Text": {"Data": "Qx"}}}},
            )
        assert b"otel_traceparent" in bodies[-1]
        (canonical_request,) = [
            r.getMessage() for r in caplog.records if r.getMessage().startswith("CanonicalRequest")
        ]
        payload_hash = canonical_request.strip().splitlines()[-1]
        assert payload_hash == hashlib.sha256(bodies[-1]).hexdigest()


def test_v2_send_carries_email_tags(telemetry: Telemetry, moto: str) -> None:
    ses = client("sesv2", moto)
    bodies = capture(ses)
    params: Dict[str, Any] = {
        "FromEmailAddress": "orders@shop.example",
        "Destination": {"ToAddresses": ["john@gmail.com"]},
        "Content": {
            "Simple": {"Subject": {"Data": "Qx order"}, "Body": {"Text": {"Data": "Qx body"}}}
        },
        "EmailTags": copy.deepcopy(APP_TAGS),
    }
    untouched = copy.deepcopy(params)
    message_id = ses.send_email(**params)["MessageId"]
    assert params == untouched
    send = telemetry.span("send ses")
    sent = json.loads(bodies[-1])
    assert sent["Content"] == params["Content"]  # the rest of the body as botocore made it
    tags = json_tags(bodies[-1])
    assert tags[0] == ("kind", "receipts")
    echoed = carried(tags, send)
    webhook = hook(telemetry, Sns())
    events = webhook.handle(encode(envelope(ses_event("delivery", message_id, echoed))), HEADERS)
    kit.assert_recorded(telemetry, events, "ses", [{"email.provider.message_id": message_id}], send)


def test_v1_raw_and_templated_sends_carry_tags(telemetry: Telemetry, moto: str) -> None:
    ses = client("ses", moto)
    bodies = capture(ses)
    raw = b"From: orders@shop.example\r\nTo: john@gmail.com\r\nSubject: Qx\r\n\r\nQx body\r\n"
    ses.send_raw_email(RawMessage={"Data": raw})
    carried(query_tags(bodies[-1]), telemetry.spans("send ses")[-1])
    ses.create_template(
        Template={"TemplateName": "t1", "SubjectPart": "Hi", "TextPart": "Qx", "HtmlPart": "Qx"}
    )
    ses.send_templated_email(
        Source="orders@shop.example",
        Destination={"ToAddresses": ["john@gmail.com"]},
        Template="t1",
        TemplateData="{}",
    )
    carried(query_tags(bodies[-1]), telemetry.spans("send ses")[-1])


def test_bulk_sends_carry_default_tags(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST", V1_PATH, body=v1_bulk({"Status": "Success", "MessageId": MESSAGE_ID}), headers=XML
    )
    destinations = [
        {
            "Destination": {"ToAddresses": ["john@gmail.com"]},
            "ReplacementTags": [{"Name": "kind", "Value": "vip"}],
        }
    ]
    untouched = copy.deepcopy(destinations)
    client("ses", provider_server.url).send_bulk_templated_email(
        Source="orders@shop.example",
        Template="news",
        DefaultTemplateData="{}",
        DefaultTags=copy.deepcopy(APP_TAGS),
        Destinations=destinations,
    )
    assert destinations == untouched
    batch = telemetry.span("send_batch ses")
    form = provider_server.requests[-1].body
    tags = query_tags(form, "DefaultTags")
    assert tags[0] == ("kind", "receipts")
    carried(tags, batch)
    assert parse_qs(form.decode())["Destinations.member.1.ReplacementTags.member.1.Value"] == [
        "vip"
    ]

    provider_server.on(
        "POST",
        V2_BULK_PATH,
        json={"BulkEmailEntryResults": [{"Status": "SUCCESS", "MessageId": MESSAGE_ID}]},
        headers=JSON,
    )
    client("sesv2", provider_server.url).send_bulk_email(
        FromEmailAddress="orders@shop.example",
        DefaultContent={"Template": {"TemplateName": "news", "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": ["john@gmail.com"]}}],
    )
    carried(
        json_tags(provider_server.requests[-1].body, "DefaultEmailTags"),
        telemetry.spans("send_batch ses")[-1],
    )


def test_aiobotocore_send_carries_tags(telemetry: Telemetry, moto: str) -> None:
    async def send() -> List[bytes]:
        async with aio_client("ses", moto) as ses:
            bodies = capture(ses)
            await ses.send_email(**v1_params(Source="orders@shop.example"))
            return bodies

    bodies = asyncio.run(send())
    carried(query_tags(bodies[-1]), telemetry.span("send ses"))


def test_the_send_is_left_alone_when_it_cannot_carry_tags(
    instrument: Any, moto: str, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="none")
    ses = client("ses", moto)
    bodies = capture(ses)
    ses.send_email(**v1_params(Source="orders@shop.example", Tags=copy.deepcopy(APP_TAGS)))
    assert query_tags(bodies[-1]) == [("kind", "receipts")]
    from opentelemetry.instrumentation.email import EmailInstrumentor

    EmailInstrumentor().uninstrument()
    telemetry = instrument()
    ses = client("ses", moto)
    bodies = capture(ses)
    mine = [{"Name": "otel_traceparent", "Value": "mine"}]
    ses.send_email(**v1_params(Source="orders@shop.example", Tags=mine))
    assert query_tags(bodies[-1]) == [("otel_traceparent", "mine")]  # never overwritten
    full = [{"Name": f"k{i}", "Value": "v"} for i in range(49)]
    ses.send_email(**v1_params(Source="orders@shop.example", Tags=full))
    assert len(query_tags(bodies[-1])) == 49  # 51 > SES's 50 tags
    provider_server.on(
        "POST", V1_PATH, body=v1_bulk({"Status": "Success", "MessageId": MESSAGE_ID}), headers=XML
    )
    client("ses", provider_server.url).send_bulk_templated_email(
        Source="orders@shop.example",
        Template="news",
        DefaultTemplateData="{}",
        Destinations=[
            {
                "Destination": {"ToAddresses": ["john@gmail.com"]},
                "ReplacementTags": [{"Name": "otel_sent_at", "Value": "1"}],
            }
        ],
    )
    assert query_tags(provider_server.requests[-1].body, "DefaultTags") == []
    assert len(telemetry.spans("send ses")) == 2 and telemetry.spans("send_batch ses")


# -- the events SES publishes ------------------------------------------------------------------


def _linked_tags(telemetry: Telemetry) -> Tuple[Any, Dict[str, str]]:
    """A send span of the test's own and the tags that would carry it."""
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("send ses") as span:
        ctx = span.get_span_context()
    traceparent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-01"
    sent_at = str(int(datetime.now(timezone.utc).timestamp() * 1000) - 5000)
    return ctx, {"otel_traceparent": traceparent, "otel_sent_at": sent_at}


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "delivery_delay",
            {
                "email.delivery.event": "deferred",
                "email.smtp.response.code": 421,
                "email.smtp.enhanced_status": "4.4.1",
            },
        ),
        ("open", {"email.delivery.event": "opened", "email.to.address": ("j***@gmail.com",)}),
        ("click", {"email.delivery.event": "clicked"}),
        ("reject", {"email.delivery.event": "rejected"}),
    ],
)
def test_other_event_types(telemetry: Telemetry, name: str, expected: Dict[str, Any]) -> None:
    webhook = hook(telemetry, Sns())
    events = webhook.handle(encode(envelope(ses_event(name, MESSAGE_ID))), HEADERS)
    kit.assert_recorded(
        telemetry, events, "ses", [{**expected, "email.provider.message_id": MESSAGE_ID}]
    )


def test_identity_notifications_are_recorded_unlinked_per_recipient(telemetry: Telemetry) -> None:
    event = ses_event("identity_bounce", MESSAGE_ID)
    event["bounce"]["bouncedRecipients"][1]["emailAddress"] = "rich@yahoo.com"
    webhook = hook(telemetry, Sns(), secret=None)  # no allow-list: any topic
    events = webhook.handle(encode(envelope(event)), HEADERS)
    kit.assert_recorded(
        telemetry,
        events,
        "ses",
        [
            {
                "email.delivery.bounce.type": "soft",  # Transient
                "email.smtp.response.code": 452,
                "email.smtp.enhanced_status": "4.2.2",
                "email.to.address": ("j***@gmail.com",),
            },
            {"email.delivery.bounce.type": "soft", "email.to.address": ("r***@yahoo.com",)},
        ],
    )
    # No tags came back; mail.timestamp is the send time.
    assert [count for _, count in telemetry.values("email.delivery.duration")] == [2]
    assert [e.sent_at is not None for e in events] == [True, True]


def test_events_without_a_place_and_confirmations_record_nothing(telemetry: Telemetry) -> None:
    sns = Sns()
    webhook = hook(telemetry, sns)
    for body in (
        envelope(ses_event("send", MESSAGE_ID)),
        envelope("Successfully validated SNS topic for Amazon SES event publishing."),
        envelope("unsubscribed", kind="UnsubscribeConfirmation"),
    ):
        assert webhook.handle(encode(body), HEADERS) == []
    assert not kit.deliver_spans(telemetry, "ses")
    assert not telemetry.values("email.delivery.events")


def test_subscription_is_confirmed_for_an_allowed_topic_only(telemetry: Telemetry) -> None:
    sns = Sns()
    confirmation = envelope("You have chosen to subscribe", kind="SubscriptionConfirmation")
    response = hook(telemetry, sns).respond(encode(confirmation), HEADERS)
    assert response.status == 200
    assert sns.fetched == [CERT_URL, confirmation["SubscribeURL"]]
    assert confirmation["SubscribeURL"].startswith(
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    )

    unlisted = Sns()
    assert hook(telemetry, unlisted, secret=None).handle(encode(confirmation), HEADERS) == []
    assert unlisted.fetched == [CERT_URL]  # verified, left for the operator to confirm
    assert not telemetry.values("email.delivery.events")


def test_a_confirmation_that_fails_is_heard_again(telemetry: Telemetry) -> None:
    sns = Sns()
    calls: List[str] = []

    def flaky(url: str) -> bytes:
        calls.append(url)
        if "ConfirmSubscription" in url and len(calls) < 3:
            raise ConnectionResetError("reset")
        return sns.fetch(url)

    webhook = kit.hook(telemetry, "ses", TOPIC, fetch=flaky)
    body = encode(envelope("You have chosen to subscribe", kind="SubscriptionConfirmation"))
    assert webhook.respond(body, HEADERS).status == 500  # SNS delivers it again
    assert webhook.respond(body, HEADERS).status == 200  # not taken for a replay
    assert sns.fetched[-1].startswith("https://sns.us-east-1.amazonaws.com/?Action=Confirm")


def test_a_retry_within_the_hour_is_accepted_once(telemetry: Telemetry) -> None:
    ctx, tags = _linked_tags(telemetry)
    webhook = hook(telemetry, Sns())
    published = datetime.now(timezone.utc) - timedelta(minutes=50)  # past the 300 s default
    body = encode(envelope(ses_event("delivery", MESSAGE_ID, tags), published=published))
    (event,) = webhook.handle(body, HEADERS)
    assert event.traceparent == tags["otel_traceparent"]
    (span,) = kit.deliver_spans(telemetry, "ses")
    assert [link.context.span_id for link in span.links] == [ctx.span_id]
    # The same message again (SNS delivers at least once; or a replay).
    refused = telemetry.counter(
        "email.delivery.webhooks.refused", email__system="ses", error__type="stale"
    )
    with pytest.raises(WebhookVerificationError) as caught:
        webhook.handle(body, HEADERS)
    assert caught.value.reason == "stale"
    assert len(kit.deliver_spans(telemetry, "ses")) == 1
    assert (
        telemetry.counter(
            "email.delivery.webhooks.refused", email__system="ses", error__type="stale"
        )
        == refused + 1
    )


def test_the_certificate_comes_from_urllib_without_fetch(
    telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    sns = Sns()
    monkeypatch.setattr(receiver, "_urlopen", sns.fetch)
    webhook = kit.hook(telemetry, "ses", TOPIC)
    assert webhook.handle(encode(envelope(ses_event("delivery", MESSAGE_ID))), HEADERS)
    assert sns.fetched == [CERT_URL]


# -- refused -----------------------------------------------------------------------------------


def _tampered(body: Dict[str, Any]) -> Dict[str, Any]:
    body["Message"] = body["Message"].replace("recipient", "attacker")
    return body


def _resigned(**fields: Any) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    def change(body: Dict[str, Any]) -> Dict[str, Any]:
        body.update(fields)
        return sign(body)

    return change


@pytest.mark.parametrize(
    "change, reason",
    [
        (_tampered, "signature"),
        (lambda b: {**b, "Signature": "%%%"}, "signature"),
        (lambda b: {**b, "Signature": ""}, "signature"),
        (lambda b: {**b, "SignatureVersion": "3"}, "signature"),
        (lambda b: {k: v for k, v in b.items() if k != "Timestamp"}, "signature"),
        (lambda b: sign(b, _key("forger")), "signature"),
        (_resigned(SigningCertURL=CERT_URL.replace("https:", "http:")), "signature"),
        (
            _resigned(
                SigningCertURL=CERT_URL.replace("amazonaws.com", "amazonaws.com.evil.example")
            ),
            "signature",
        ),
        (
            _resigned(SigningCertURL="https://sns.us-east-1.amazonaws.com.evil.example/x.pem"),
            "signature",
        ),
        (
            _resigned(SigningCertURL="https://evil.example/sns.us-east-1.amazonaws.com/x.pem"),
            "signature",
        ),
        (_resigned(SigningCertURL="https://sns.us-east-1.amazonaws.com:8443/x.pem"), "signature"),
        (_resigned(SigningCertURL="https://u@sns.us-east-1.amazonaws.com/x.pem"), "signature"),
        (_resigned(SigningCertURL=CERT_URL[:-4] + ".txt"), "signature"),
        (_resigned(TopicArn="arn:aws:sns:us-east-1:999999999999:theirs"), "credentials"),
        (_resigned(Timestamp=_iso(datetime.now(timezone.utc) - timedelta(hours=2))), "stale"),
        (_resigned(Timestamp="yesterday"), "signature"),
    ],
)
def test_unverified_messages_are_refused(
    telemetry: Telemetry, change: Callable[[Dict[str, Any]], Dict[str, Any]], reason: str
) -> None:
    webhook = hook(telemetry, Sns())
    body = change(envelope(ses_event("delivery", MESSAGE_ID)))
    kit.assert_refused(telemetry, webhook, encode(body), HEADERS, reason)


def test_an_expired_certificate_is_refused(telemetry: Telemetry) -> None:
    webhook = hook(telemetry, Sns(_pem(expired=True)))
    body = encode(envelope(ses_event("delivery", MESSAGE_ID)))
    kit.assert_refused(telemetry, webhook, body, HEADERS, "signature")


def test_an_unreadable_certificate_is_refused(telemetry: Telemetry) -> None:
    webhook = hook(
        telemetry, Sns(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    )
    body = encode(envelope(ses_event("delivery", MESSAGE_ID)))
    kit.assert_refused(telemetry, webhook, body, HEADERS, "signature")


def test_a_certificate_that_cannot_be_fetched_asks_sns_to_retry(telemetry: Telemetry) -> None:
    def unreachable(url: str) -> bytes:
        raise TimeoutError("timed out")

    webhook = kit.hook(telemetry, "ses", TOPIC, fetch=unreachable)
    body = encode(envelope(ses_event("delivery", MESSAGE_ID)))
    with pytest.raises(OSError):
        webhook.handle(body, HEADERS)
    assert webhook.respond(body, HEADERS).status == 500  # SNS retries a 5xx, not a 4xx
    assert not kit.deliver_spans(telemetry, "ses")
    # The retry, once the certificate can be had, is recorded.
    good = kit.hook(telemetry, "ses", TOPIC, fetch=Sns().fetch)
    assert len(good.handle(body, HEADERS)) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"Type": "Notice"}',
        b"\xff\xfe",
        json.dumps({"x": 1}).encode(),
        encode(envelope("not an SES event")),
        encode(envelope(json.dumps({"mail": {}}))),
        encode(envelope(json.dumps([1, 2]))),
    ],
)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    kit.assert_refused(telemetry, hook(telemetry, Sns()), body, HEADERS, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    sns = Sns()
    webhook = hook(telemetry, sns, max_body_bytes=1024)
    body = encode(envelope(ses_event("delivery", MESSAGE_ID, {"pad": "x" * 2000})))
    kit.assert_refused(telemetry, webhook, body, HEADERS, "malformed")
    assert webhook.respond(body, HEADERS).status == 413
    assert sns.fetched == []
