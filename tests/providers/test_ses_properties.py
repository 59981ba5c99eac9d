"""Properties of the SES adapter: nothing raw leaves the process whatever
the payload, and the application sees the same results and exceptions with
and without the instrumentation."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any, Callable, Dict, List, Tuple
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import instrumented
from tests.outcome import observe
from tests.providers.http_server import ProviderServer
from tests.providers.ses_support import (
    JSON,
    MESSAGE_ID,
    NOT_VERIFIED,
    SIMPLE,
    V1_PATH,
    V2_BULK_PATH,
    V2_SEND_PATH,
    XML,
    client,
    free_port,
    moto_url,
    v1_bulk,
    v1_error,
    v1_result,
    v2_error_headers,
)
from tests.support import privacy

# -- privacy ---------------------------------------------------------------------------


@settings(privacy.PROPERTY_SETTINGS, max_examples=25)
@given(
    sender=privacy.local_parts,
    to=st.one_of(privacy.local_parts, privacy.unicode_local_parts),
    cc=privacy.local_parts,
    failed=privacy.local_parts,
    domain=st.sampled_from(["gmail.com", "example.org", "corp.example", "yahoo.fr"]),
    subject=privacy.words,
    body=privacy.words,
)
def test_default_settings_never_export_a_raw_address_subject_or_body(
    moto: str,
    provider_server: ProviderServer,
    sender: str,
    to: str,
    cc: str,
    failed: str,
    domain: str,
    subject: str,
    body: str,
) -> None:
    addresses = {
        "from": f"s{sender}@shop.example",
        "to": f"t{to}@{domain}",
        "cc": f"c{cc}@{domain}",
        "failed": f"f{failed}@{domain}",
        "unverified": f"u{sender}@elsewhere.example",
    }
    provider_server.reset()
    provider_server.on(
        "POST",
        V1_PATH,
        body=v1_bulk(
            {"Status": "Success", "MessageId": MESSAGE_ID},
            {"Status": "MessageRejected", "Error": f"Qx not verified: {addresses['failed']}"},
        ),
        headers=XML,
    )
    provider_server.on(
        "POST",
        V2_BULK_PATH,
        400,
        json={"message": f"Qx rejected {addresses['failed']}"},
        headers=v2_error_headers("MessageRejected"),
    )
    with instrumented() as telemetry:
        ses = client("ses", moto)
        destination = {
            "ToAddresses": [f"Customer <{addresses['to']}>"],
            "CcAddresses": [addresses["cc"]],
        }
        content = {"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}}
        ses.send_email(
            Source=f"Shop <{addresses['from']}>", Destination=destination, Message=content
        )
        message = EmailMessage()
        message["From"] = addresses["from"]
        message["To"] = f"Customer <{addresses['to']}>"
        message["Cc"] = addresses["cc"]
        message["Subject"] = subject
        message.set_content(body)
        ses.send_raw_email(RawMessage={"Data": message.as_bytes()})
        client("sesv2", moto).send_email(
            FromEmailAddress=addresses["from"], Destination=destination, Content={"Simple": content}
        )
        # SES quotes the address it rejects in its error text.
        with pytest.raises(Exception, match="not verified"):
            ses.send_email(Source=addresses["unverified"], Destination=destination, Message=content)
        client("ses", provider_server.url).send_bulk_templated_email(
            Source=addresses["from"],
            Template="t",
            DefaultTemplateData="{}",
            Destinations=[
                {"Destination": destination},
                {"Destination": {"ToAddresses": [addresses["failed"]]}},
            ],
        )
        with pytest.raises(Exception, match="rejected"):
            client("sesv2", provider_server.url).send_bulk_email(
                FromEmailAddress=addresses["from"],
                DefaultContent={"Template": {"TemplateName": "t", "TemplateData": "{}"}},
                BulkEmailEntries=[{"Destination": {"ToAddresses": [addresses["failed"]]}}],
            )
    exported = privacy.assert_nothing_leaked(telemetry, addresses, subject, body)
    assert len(telemetry.spans()) == 6
    assert "send_batch ses" in exported  # the check above ran on real telemetry


# -- differential ------------------------------------------------------------------------

DESTINATION = {"ToAddresses": ["alice@example.org"]}


def _v1_send(url: str, source: str = "orders@shop.example") -> Any:
    return client("ses", url).send_email(Source=source, Destination=DESTINATION, Message=SIMPLE)


def _v2_bulk(url: str) -> Any:
    return client("sesv2", url).send_bulk_email(
        FromEmailAddress="orders@shop.example",
        DefaultContent={"Template": {"TemplateName": "t", "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": DESTINATION}],
    )


def _scenarios(moto: str, server: ProviderServer) -> List[Tuple[str, Callable[[], Any], bool]]:
    """(name, call, raises); each call sets up its own route first."""

    def routed(method: str, path: str, *args: Any, **kwargs: Any) -> Callable[[], None]:
        return lambda: server.on(method, path, *args, **kwargs)

    def then(setup: Callable[[], None], call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            server.reset()
            setup()
            return call()

        return run

    nothing = lambda: None  # noqa: E731
    return [
        ("v1 send", then(nothing, lambda: _v1_send(moto)), False),
        (
            "v1 raw",
            then(
                nothing,
                lambda: client("ses", moto).send_raw_email(
                    RawMessage={"Data": b"From: o@shop.example\r\nTo: a@b.example\r\n\r\nQx"}
                ),
            ),
            False,
        ),
        ("v1 rejected", then(nothing, lambda: _v1_send(moto, "u@elsewhere.example")), True),
        (
            "v2 simple",
            then(
                nothing,
                lambda: client("sesv2", moto).send_email(
                    FromEmailAddress="orders@shop.example",
                    Destination=DESTINATION,
                    Content={"Simple": SIMPLE},
                ),
            ),
            False,
        ),
        (
            "v1 bulk partial",
            then(
                routed(
                    "POST",
                    V1_PATH,
                    body=v1_bulk(
                        {"Status": "Success", "MessageId": MESSAGE_ID},
                        {"Status": "MessageRejected", "Error": NOT_VERIFIED},
                    ),
                    headers=XML,
                ),
                lambda: client("ses", server.url).send_bulk_templated_email(
                    Source="orders@shop.example",
                    Template="t",
                    DefaultTemplateData="{}",
                    Destinations=[{"Destination": DESTINATION}, {"Destination": DESTINATION}],
                ),
            ),
            False,
        ),
        (
            "v1 throttled",
            then(
                routed("POST", V1_PATH, 400, body=v1_error("Throttling", "Qx"), headers=XML),
                lambda: _v1_send(server.url),
            ),
            True,
        ),
        (
            "v2 bulk 429",
            then(
                routed(
                    "POST",
                    V2_BULK_PATH,
                    429,
                    json={"message": "Qx"},
                    headers=v2_error_headers("TooManyRequestsException"),
                ),
                lambda: _v2_bulk(server.url),
            ),
            True,
        ),
        (
            "v2 bulk ok",
            then(
                routed(
                    "POST",
                    V2_BULK_PATH,
                    json={
                        "BulkEmailEntryResults": [{"Status": "SUCCESS", "MessageId": MESSAGE_ID}]
                    },
                    headers=JSON,
                ),
                lambda: _v2_bulk(server.url),
            ),
            False,
        ),
        (
            "dropped connection",
            then(routed("POST", V1_PATH, action="close"), lambda: _v1_send(server.url)),
            True,
        ),
        (
            "connection refused",
            then(nothing, lambda: _v1_send(f"http://127.0.0.1:{free_port()}")),
            True,
        ),
    ]


_VARYING_KEYS = {"RequestId", "MessageId", "date", "x-amzn-requestid", "content-length"}
_PORT = re.compile(r"127\.0\.0\.1(:|', port=)\d+")
# The trace context an instrumented send carries as message tags (ses.py).
_PROPAGATED_TAGS = re.compile(
    r"&Tags\.member\.\d+\.Name=otel_[a-z_]+&Tags\.member\.\d+\.Value=[0-9a-f-]+"
)


def _normalise(value: Any) -> Any:
    """What legitimately differs between two runs: generated ids, dates,
    the length of a body carrying them, and throwaway ports."""
    if isinstance(value, dict):
        return {k: "<varies>" if k in _VARYING_KEYS else _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_normalise(v) for v in value)
    if isinstance(value, str):
        return _PORT.sub(r"127.0.0.1\1<port>", value)
    if isinstance(value, (int, float, bool, bytes, type)) or value is None:
        return value
    if hasattr(value, "method") and hasattr(value, "url"):
        # botocore's prepared request: its signature and date change by the second.
        body = value.body
        if isinstance(body, str):
            body = _PROPAGATED_TAGS.sub("", body)
        return (type(value), value.method, _normalise(value.url), body)
    # Other objects (the urllib3 error inside a botocore one) by type and text.
    return (type(value), _normalise(str(value)))


def _outcome(call: Callable[[], Any]) -> Any:
    kind, value = observe(call)
    if kind == "raised":
        value = dict(value)
        value["args"] = _normalise(value["args"])
        value["str"] = _normalise(value["str"])
        value["state"] = _normalise(value["state"])
        value["frames"] = [(f, fn, _normalise(line)) for f, fn, line in value["frames"]]
    else:
        value = _normalise(value)
    return kind, value


def test_instrumented_and_uninstrumented_behave_the_same(
    moto: str, provider_server: ProviderServer
) -> None:
    scenarios = _scenarios(moto, provider_server)
    plain: Dict[str, Any] = {name: _outcome(call) for name, call, _ in scenarios}
    with instrumented() as telemetry:
        traced = {name: _outcome(call) for name, call, _ in scenarios}
    for name, _call, raises in scenarios:
        assert traced[name] == plain[name], name
        assert traced[name][0] == ("raised" if raises else "returned"), name
        if raises:
            assert traced[name][1]["frames"], f"{name}: no library frame compared"
    assert len(telemetry.spans()) == len(scenarios)


# -- hostile input and answers (test_hostile.py) ----------------------------------------------

HOSTILE_EXAMPLES = 6


def normalise_outcome(outcome: Any) -> Any:
    """An outcome as ``test_hostile.py`` compares it: :func:`_normalise`'s
    view (ids, dates, ports and propagated tags blanked)."""
    return _normalise(outcome)


def _xml(value: str) -> str:
    return escape(value, {'"': "&quot;"})


def hostile_calls(server: ProviderServer, example: privacy.Hostile) -> Dict[str, Callable[[], Any]]:
    """SES v1 and v2 with the example's addresses in every field that takes
    one, tags and headers holding addresses, answered by the local server
    with the example's id and error texts; and moto refusing the sender."""
    written = example.written
    destination = {
        "ToAddresses": [written["to"]],
        "CcAddresses": [written["cc"]],
        "BccAddresses": [f"{example.names['to']} <{example.other}>"],
    }
    content = {"Subject": {"Data": example.subject}, "Body": {"Text": {"Data": example.body}}}
    tags = [{"Name": "customer", "Value": example.tag}]
    answer_id = example.answer_id

    def v1_send() -> Any:
        server.on(
            "POST",
            V1_PATH,
            body=v1_result("SendEmail", f"<MessageId>{_xml(answer_id)}</MessageId>"),
            headers=XML,
        )
        return client("ses", server.url).send_email(
            Source=written["from"],
            Destination=destination,
            Message=content,
            ReplyToAddresses=[example.header],
            ReturnPath=example.other,
            Tags=tags,
        )

    def v2_raw() -> Any:
        server.on("POST", V2_SEND_PATH, json={"MessageId": answer_id}, headers=JSON)
        return client("sesv2", server.url).send_email(
            FromEmailAddress=written["from"],
            Destination=destination,
            Content={"Raw": {"Data": privacy.hostile_mime(example)}},
            EmailTags=tags,
        )

    def v1_bulk_statuses() -> Any:
        server.on(
            "POST",
            V1_PATH,
            body=v1_result(
                "SendBulkTemplatedEmail",
                "<Status>"
                f"<member><Status>Success</Status><MessageId>{_xml(answer_id)}</MessageId></member>"
                f"<member><Status>{_xml(example.local('to'))}</Status>"
                f"<Error>{_xml(example.answer_text)}</Error></member>"
                "<member><Status>MessageRejected</Status>"
                f"<Error>{_xml(example.answer_text)}</Error></member>"
                "</Status>",
            ),
            headers=XML,
        )
        return client("ses", server.url).send_bulk_templated_email(
            Source=written["from"],
            Template="t",
            DefaultTemplateData="{}",
            DefaultTags=tags,
            Destinations=[
                {"Destination": destination},
                {"Destination": {"ToAddresses": [written["cc"]]}},
                {"Destination": {"ToAddresses": [example.other]}, "ReplacementTags": tags},
            ],
        )

    def v2_bulk_refused() -> Any:
        server.on(
            "POST",
            V2_BULK_PATH,
            400,
            json={"message": example.answer_text, "Code": example.to},
            headers=v2_error_headers("MessageRejected"),
        )
        return client("sesv2", server.url).send_bulk_email(
            FromEmailAddress=written["from"],
            DefaultContent={"Template": {"TemplateName": "t", "TemplateData": "{}"}},
            BulkEmailEntries=[
                {"Destination": destination, "ReplacementTags": tags},
                {"Destination": {"ToAddresses": [written["cc"]]}},
            ],
        )

    def v1_error_quoting() -> Any:
        server.on(
            "POST",
            V1_PATH,
            400,
            body=v1_error("MessageRejected", _xml(example.answer_text)),
            headers=XML,
        )
        return client("ses", server.url).send_email(
            Source=written["from"], Destination=destination, Message=content
        )

    def moto_unverified() -> Any:
        # moto's own refusal, quoting the sender it did not verify.
        return client("ses", moto_url()).send_email(
            Source=written["from"], Destination=destination, Message=content
        )

    return {
        "v1 send": v1_send,
        "v2 raw": v2_raw,
        "v1 bulk statuses": v1_bulk_statuses,
        "v2 bulk refused": v2_bulk_refused,
        "v1 error": v1_error_quoting,
        "moto unverified": moto_unverified,
    }
