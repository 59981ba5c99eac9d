"""SES with opentelemetry-instrumentation-botocore on as well: one CLIENT
span per SES call (the botocore instrumentation's span becomes the send
span), both packages working in every order of instrument and uninstrument,
and every patched callable restored at the end."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List

import aiobotocore.client
import botocore.client
import botocore.endpoint
import pytest
from botocore.exceptions import ClientError
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor, BotocoreInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry import trace
from opentelemetry.instrumentation.email import EmailInstrumentor
from tests.conftest import Telemetry
from tests.providers.ses_support import SIMPLE, aio_client, client, v1_params

EMAIL_SCOPE = "opentelemetry.instrumentation.email"
BOTOCORE_SCOPE = "opentelemetry.instrumentation.botocore"


def patched_callables() -> Dict[str, Any]:
    found = {
        "_make_api_call": botocore.client.BaseClient.__dict__["_make_api_call"],
        "_make_request": botocore.client.BaseClient.__dict__["_make_request"],
        "_emit_api_params": botocore.client.BaseClient.__dict__["_emit_api_params"],
        "prepare_request": botocore.endpoint.Endpoint.__dict__["prepare_request"],
    }
    for name in ("_make_api_call", "_make_request", "_emit_api_params"):
        found["aio" + name] = aiobotocore.client.AioBaseClient.__dict__[name]
    return found


def send(ses: Any, **overrides: Any) -> Any:
    return ses.send_email(**v1_params(**overrides))


class Both:
    """The two instrumentations, exporting to one in-memory SDK."""

    def __init__(self) -> None:
        self.telemetry = Telemetry()

    def email(self) -> None:
        EmailInstrumentor().instrument(**self.telemetry.providers())

    def botocore(self) -> None:
        provider = self.telemetry.tracer_provider
        BotocoreInstrumentor().instrument(tracer_provider=provider)
        AiobotocoreInstrumentor().instrument(tracer_provider=provider)

    def unemail(self) -> None:
        EmailInstrumentor().uninstrument()

    def unbotocore(self) -> None:
        BotocoreInstrumentor().uninstrument()
        AiobotocoreInstrumentor().uninstrument()


@pytest.fixture
def both() -> Any:
    originals = patched_callables()
    pair = Both()
    yield pair
    pair.unemail()
    pair.unbotocore()
    assert patched_callables() == originals


def sent_messages(telemetry: Telemetry) -> int:
    return telemetry.counter("email.client.sent.messages", email__system="ses")


@pytest.mark.parametrize("instrument_order", ["email_first", "botocore_first"])
@pytest.mark.parametrize("uninstrument_order", ["email_first", "botocore_first"])
def test_one_client_span_per_ses_call_in_any_order(
    both: Both, moto: str, instrument_order: str, uninstrument_order: str
) -> None:
    telemetry = both.telemetry
    originals = patched_callables()
    steps = [both.email, both.botocore]
    for step in steps if instrument_order == "email_first" else reversed(steps):
        step()
    ses = client("ses", moto)
    seen: List[int] = []
    ses.meta.events.register(
        "before-send.ses.SendEmail",
        lambda **kwargs: seen.append(trace.get_current_span().get_span_context().span_id),
    )

    result = send(ses)
    [span] = telemetry.spans()
    assert span.name == "send ses"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == BOTOCORE_SCOPE
    attributes = dict(span.attributes or {})
    # Both packages' attributes on the one span.
    assert attributes["rpc.service"] == "SES" and attributes["rpc.method"] == "SendEmail"
    assert attributes["email.system"] == "ses"
    assert attributes["email.to.address"] == ("a***@example.org",)
    assert attributes["email.provider.message_id"] == result["MessageId"]
    assert attributes["http.response.status_code"] == 200
    assert seen == [span.context.span_id]  # the HTTP layer runs under it
    [log] = telemetry.logs()
    assert log.span_id == span.context.span_id
    assert sent_messages(telemetry) == 1

    # A failure: still one span, with the email error.type.
    telemetry.clear()
    with pytest.raises(ClientError):
        send(ses, Source="unverified@elsewhere.example")
    [span] = telemetry.spans()
    assert span.name == "send ses"
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "400"

    # Other calls are the botocore instrumentation's alone.
    telemetry.clear()
    ses.get_send_quota()
    assert [s.name for s in telemetry.spans()] == ["SES.GetSendQuota"]

    # Take one away: the other works alone.
    telemetry.clear()
    if uninstrument_order == "email_first":
        both.unemail()
        send(ses)
        [span] = telemetry.spans()
        assert span.name == "SES.SendEmail"
        assert "email.system" not in dict(span.attributes or {})
        assert sent_messages(telemetry) == 2  # unchanged
        both.unbotocore()
    else:
        both.unbotocore()
        send(ses)
        [span] = telemetry.spans()
        assert span.name == "send ses"
        assert span.kind is SpanKind.CLIENT
        assert span.instrumentation_scope is not None
        assert span.instrumentation_scope.name == EMAIL_SCOPE
        assert "rpc.method" not in dict(span.attributes or {})
        assert sent_messages(telemetry) == 3
        both.unemail()

    telemetry.clear()
    send(ses)
    assert telemetry.spans() == []
    assert patched_callables() == originals


def test_sesv2_bulk_and_raw_with_botocore_instrumentation(both: Both, moto: str) -> None:
    both.botocore()
    both.email()
    v2 = client("sesv2", moto)
    v2.send_email(
        Content={"Raw": {"Data": b"From: orders@shop.example\r\nTo: a@gmail.com\r\n\r\nQx"}}
    )
    [span] = both.telemetry.spans()
    assert span.name == "send ses"
    attributes = dict(span.attributes or {})
    assert attributes["rpc.service"] == "SESv2"
    assert attributes["email.to.address"] == ("a***@gmail.com",)


@pytest.mark.parametrize("instrument_order", ["email_first", "botocore_first"])
def test_aiobotocore_one_client_span(both: Both, moto: str, instrument_order: str) -> None:
    steps: List[Callable[[], None]] = [both.email, both.botocore]
    for step in steps if instrument_order == "email_first" else reversed(steps):
        step()

    async def run() -> Any:
        async with aio_client("ses", moto) as ses:
            return await ses.send_email(
                Source="orders@shop.example",
                Destination={"ToAddresses": ["alice@example.org"]},
                Message=SIMPLE,
            )

    result = asyncio.run(run())
    [span] = both.telemetry.spans()
    assert span.name == "send ses"
    assert span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["rpc.method"] == "SendEmail"
    assert attributes["email.provider.message_id"] == result["MessageId"]


def test_with_botocore_instrumentation_the_adopted_span_is_carried(
    telemetry: Telemetry, moto: str
) -> None:
    """The send span botocore's instrumentation opened and this package
    adopted is the one whose context the message tags carry."""
    from tests.delivery.test_ses import capture, carried, query_tags

    BotocoreInstrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    try:
        ses = client("ses", moto)
        bodies = capture(ses)
        ses.send_email(**v1_params(Source="orders@shop.example"))
    finally:
        BotocoreInstrumentor().uninstrument()
    (sent,) = telemetry.spans("send ses")
    assert sent.instrumentation_scope.name.startswith("opentelemetry.instrumentation.botocore")
    carried(query_tags(bodies[-1]), sent)


def test_adopting_the_botocore_span_never_breaks_the_app_when_the_span_fails(moto: str) -> None:
    """The fault-injection suite (``tests/test_faults.py``) for the one call
    only this path makes: renaming the adopted span raises; SES's answers
    reach the application as they do uninstrumented, and metrics and logs
    still record each send."""
    from tests.support.faults import Run, run_faults, ses_scenarios

    def instrument(run: Run) -> Callable[[], None]:
        providers = run.providers()
        # Both on the faulty SDK: the span adopted is a faulty span too.
        BotocoreInstrumentor().instrument(tracer_provider=providers["tracer_provider"])
        EmailInstrumentor().instrument(**providers)

        def uninstrument() -> None:
            EmailInstrumentor().uninstrument()
            BotocoreInstrumentor().uninstrument()

        return uninstrument

    run_faults("ses-adopted", "span.update_name", lambda: ses_scenarios(moto), instrument)
