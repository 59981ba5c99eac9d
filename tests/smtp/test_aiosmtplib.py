"""aiosmtplib against real aiosmtpd servers: the spans, metrics and log record
of each operation, spans that cover the awaited network work, and
uninstrument restoring every patched callable."""

from __future__ import annotations

import asyncio
import time
from importlib import metadata
from typing import Any, Awaitable, Dict, Iterator, List, Tuple

import aiosmtplib
import aiosmtplib.api
import pytest
import wrapt
from aiosmtplib import SMTPResponse
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email.aiosmtplib import PATCHES, AiosmtplibInstrumentor
from tests.conftest import Telemetry, instrumented
from tests.smtp.aiosmtplib_support import (
    DURATION_BUCKETS,
    LOCAL_HOSTNAME,
    SENDER,
    TimedHandler,
    assert_send_log,
    client,
    counter_points,
    duration_s,
    email_message,
    histogram,
    only,
    queue_id,
    raw_message,
    start_timed_server,
)
from tests.support.smtp_server import PASSWORD, USER, Server

MESSAGE_ID = "<order-1042@shop.example.org>"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def base(server: Any, operation: str) -> Dict[str, Any]:
    return {
        "email.system": "smtp",
        "email.operation.name": operation,
        "server.address": server.host,
        "server.port": server.port,
    }


def assert_client_span(span: ReadableSpan, parent: Any = None) -> None:
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    if parent is None:
        assert span.parent is None
    else:
        assert span.parent is not None
        assert span.parent.span_id == parent.context.span_id


@pytest.fixture(scope="module")
def timed_server() -> Iterator[Server]:
    server = start_timed_server()
    yield server
    server.stop()


# -- connect, starttls, login -------------------------------------------------------


def test_connect_gives_a_connect_span_with_the_greeting_code(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    async def main() -> SMTPResponse:
        smtp = client(smtp_server)
        try:
            return await smtp.connect()
        finally:
            smtp.close()

    response = run(main())

    assert response.code == 220
    span = only(telemetry.spans())
    assert span.name == "connect smtp"
    assert_client_span(span)
    assert dict(span.attributes) == {
        **base(smtp_server, "connect"),
        "email.smtp.response.code": 220,
    }
    point = histogram(
        telemetry,
        "email.client.operation.duration",
        email__system="smtp",
        email__operation__name="connect",
        server__address="127.0.0.1",
    )
    assert point.count == 1
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    # Only sends count messages and write a log record.
    assert telemetry.points("email.client.sent.messages") == []
    assert telemetry.logs() == []


def test_connect_that_upgrades_with_starttls_has_a_starttls_child_span(
    telemetry: Telemetry, starttls_server: Server, client_tls: Any
) -> None:
    async def main() -> bool:
        # start_tls=None: aiosmtplib upgrades inside connect() when offered.
        smtp = client(starttls_server, start_tls=None, tls_context=client_tls)
        try:
            await smtp.connect()
            return smtp.get_transport_info("sslcontext") is not None
        finally:
            smtp.close()

    assert run(main()) is True

    connect = only(telemetry.spans("connect smtp"))
    starttls = only(telemetry.spans("starttls smtp"))
    assert_client_span(connect)
    assert_client_span(starttls, parent=connect)
    assert dict(starttls.attributes) == {
        **base(starttls_server, "starttls"),
        "email.smtp.response.code": 220,
    }
    assert connect.start_time <= starttls.start_time <= starttls.end_time <= connect.end_time


def test_starttls_gives_a_starttls_span(
    telemetry: Telemetry, starttls_server: Server, client_tls: Any
) -> None:
    async def main() -> SMTPResponse:
        smtp = client(starttls_server, tls_context=client_tls)
        await smtp.connect()
        try:
            return await smtp.starttls()
        finally:
            smtp.close()

    response = run(main())

    assert response.code == 220
    span = only(telemetry.spans("starttls smtp"))
    assert_client_span(span)  # called by the application: not under connect
    assert dict(span.attributes) == {
        **base(starttls_server, "starttls"),
        "email.smtp.response.code": 220,
    }
    assert [s.name for s in telemetry.spans()] == ["connect smtp", "starttls smtp"]


def test_login_gives_a_login_span_without_user_or_password(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    async def main() -> SMTPResponse:
        smtp = client(smtp_server)
        await smtp.connect()
        try:
            return await smtp.login(USER, PASSWORD)
        finally:
            smtp.close()

    response = run(main())

    assert response.code == 235
    span = only(telemetry.spans("login smtp"))
    assert_client_span(span)
    assert dict(span.attributes) == {**base(smtp_server, "login"), "email.smtp.response.code": 235}
    text = repr(dict(span.attributes))
    assert USER.split("@")[0] not in text
    assert PASSWORD not in text


def test_login_refused_with_535_is_an_error_span(telemetry: Telemetry, smtp_server: Server) -> None:
    async def main() -> None:
        smtp = client(smtp_server)
        await smtp.connect()
        try:
            await smtp.login(USER, "not-the-password")
        finally:
            smtp.close()

    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as raised:
        run(main())

    assert raised.value.code == 535
    span = only(telemetry.spans("login smtp"))
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "535"
    assert dict(span.attributes) == {
        **base(smtp_server, "login"),
        "email.smtp.response.code": 535,
        "error.type": "535",
        "email.error.retryable": False,
    }
    assert "not-the-password" not in repr(span.to_json())
    point = histogram(
        telemetry,
        "email.client.operation.duration",
        email__system="smtp",
        email__operation__name="login",
        server__address="127.0.0.1",
        error__type="535",
        email__error__retryable=False,
    )
    assert point.count == 1
    assert telemetry.points("email.client.sent.messages") == []
    assert telemetry.logs() == []


def test_implicit_tls_connect_and_send(
    telemetry: Telemetry, implicit_tls_server: Server, client_tls: Any
) -> None:
    message = raw_message(["bob@example.com"])

    async def main() -> Any:
        smtp = client(implicit_tls_server, use_tls=True, start_tls=None, tls_context=client_tls)
        await smtp.connect()
        try:
            return await smtp.sendmail(SENDER, ["bob@example.com"], message)
        finally:
            smtp.close()

    refused, reply = run(main())

    assert refused == {}
    connect = only(telemetry.spans("connect smtp"))
    send = only(telemetry.spans("send smtp"))
    assert telemetry.spans("starttls smtp") == []  # TLS from the first byte
    assert dict(connect.attributes) == {
        **base(implicit_tls_server, "connect"),
        "email.smtp.response.code": 220,
    }
    assert send.attributes["server.port"] == implicit_tls_server.port
    assert send.attributes["email.provider.message_id"] == queue_id(reply)
    assert send.status.status_code is StatusCode.UNSET


# -- send -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_sendmail_gives_one_send_span_with_the_message_and_reply(
    telemetry: Telemetry, smtp_server: Server, as_bytes: bool
) -> None:
    recipients = ["bob@gmail.com", "carol@example.com"]
    text = raw_message(recipients, message_id=MESSAGE_ID)
    message: Any = text.encode() if as_bytes else text

    async def main() -> Any:
        smtp = client(smtp_server)
        await smtp.connect()
        try:
            return await smtp.sendmail(SENDER, recipients, message)
        finally:
            smtp.close()

    refused, reply = run(main())

    assert refused == {}
    sent = smtp_server.handler.received[-1].data
    span = only(telemetry.spans("send smtp"))
    assert_client_span(span)
    assert dict(span.attributes) == {
        **base(smtp_server, "send"),
        "email.from.address": "a***@example.org",
        "email.to.address": ("b***@gmail.com", "c***@example.com"),
        "email.recipient.count": 2,
        "email.message_id": MESSAGE_ID,
        "email.message.size": len(sent),
        "email.attachments.count": 0,
        "email.provider.message_id": queue_id(reply),
        "email.smtp.response.code": 250,
    }
    assert len(sent) == len(text)  # CRLF already: what aiosmtplib sent, byte for byte
    assert telemetry.counter("email.client.sent.messages") == 1
    assert counter_points(telemetry, "email.client.sent.messages") == {
        frozenset({"email.system": "smtp", "server.address": "127.0.0.1"}.items()): 1
    }
    assert counter_points(telemetry, "email.client.recipients") == {
        frozenset(
            {
                "email.system": "smtp",
                "email.recipient.status": "accepted",
                "email.recipient.domain": domain,
            }.items()
        ): 1
        for domain in ("gmail.com", "other")
    }
    size = only(p for _, p in telemetry.points("email.client.message.size"))
    assert (size.count, size.sum) == (1, len(sent))
    record = assert_send_log(telemetry, span, SeverityNumber.INFO, [SENDER, *recipients])
    assert f"id={queue_id(reply)}" in record.body


def test_sendmail_size_is_the_size_aiosmtplib_declares(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    """The size aiosmtplib puts in MAIL FROM (RFC 1870). From aiosmtplib 5
    that counts the CRLF every bare LF becomes on the wire; 3 and 4 declare
    ``len(message)``, and the attribute says what the library said."""
    message = raw_message(["bob@example.com"], newline="\n")

    async def main() -> Any:
        smtp = client(smtp_server)
        await smtp.connect()
        try:
            return await smtp.sendmail(SENDER, ["bob@example.com"], message)
        finally:
            smtp.close()

    run(main())

    received = smtp_server.handler.received[-1]
    assert len(received.data) > len(message)  # every bare LF went out as CRLF
    declared = only(int(o[5:]) for o in received.mail_options if o.lower().startswith("size="))
    major = int(metadata.version("aiosmtplib").split(".")[0])
    assert declared == (len(received.data) if major >= 5 else len(message))
    span = only(telemetry.spans("send smtp"))
    assert span.attributes["email.message.size"] == declared
    size = only(p for _, p in telemetry.points("email.client.message.size"))
    assert size.sum == declared


def test_send_message_gives_one_send_span_not_two(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    message = email_message(
        ["bob@gmail.com"], cc=["carol@example.com"], bcc=["dave@example.net"], attachments=2
    )

    async def main() -> Any:
        smtp = client(smtp_server)
        await smtp.connect()
        try:
            return await smtp.send_message(message)
        finally:
            smtp.close()

    refused, reply = run(main())

    assert refused == {}
    received = smtp_server.handler.received[-1]
    assert received.recipients == ["bob@gmail.com", "carol@example.com", "dave@example.net"]
    span = only(telemetry.spans("send smtp"))  # send_message -> sendmail: still one
    assert [s.name for s in telemetry.spans()] == ["connect smtp", "send smtp"]
    assert_client_span(span)
    assert dict(span.attributes) == {
        **base(smtp_server, "send"),
        "email.from.address": "a***@example.org",
        "email.to.address": ("b***@gmail.com",),
        "email.cc.address": ("c***@example.com",),
        "email.bcc.address": ("d***@example.net",),
        "email.recipient.count": 3,
        "email.message_id": "<order-1042@shop.example.org>",
        # The flattened message aiosmtplib sent (Bcc removed), not the object.
        "email.message.size": len(received.data),
        "email.attachments.count": 2,
        "email.provider.message_id": queue_id(reply),
        "email.smtp.response.code": 250,
    }
    assert b"Bcc" not in received.data
    assert telemetry.counter("email.client.sent.messages") == 1
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 3
    assert_send_log(
        telemetry,
        span,
        SeverityNumber.INFO,
        [SENDER, "bob@gmail.com", "carol@example.com", "dave@example.net"],
    )


def test_send_message_without_message_id_records_none(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    async def main() -> Any:
        smtp = client(smtp_server)
        await smtp.connect()
        try:
            return await smtp.send_message(email_message(["bob@example.com"], message_id=None))
        finally:
            smtp.close()

    run(main())

    span = only(telemetry.spans("send smtp"))
    assert "email.message_id" not in span.attributes
    assert span.attributes["email.attachments.count"] == 0


@pytest.mark.parametrize("module", [aiosmtplib, aiosmtplib.api], ids=lambda m: m.__name__)
def test_module_send_is_a_framework_span_over_connect_and_send(
    telemetry: Telemetry, starttls_server: Server, client_tls: Any, module: Any
) -> None:
    """``aiosmtplib.send`` connects, sends and quits in one call: one INTERNAL
    ``send aiosmtplib``; beneath it ``connect smtp`` (STARTTLS and login
    inside it) and then, its sibling, the ``send smtp`` of the message."""
    message = email_message(["bob@example.com"], attachments=1)
    send = module.send  # looked up now: instrumenting replaced it

    refused, reply = run(
        send(
            message,
            hostname=starttls_server.host,
            port=starttls_server.port,
            local_hostname=LOCAL_HOSTNAME,
            username=USER,
            password=PASSWORD,
            tls_context=client_tls,
        )
    )

    assert refused == {}
    framework = only(telemetry.spans("send aiosmtplib"))
    send_span = only(telemetry.spans("send smtp"))
    connect = only(telemetry.spans("connect smtp"))
    starttls = only(telemetry.spans("starttls smtp"))
    login = only(telemetry.spans("login smtp"))
    assert len(telemetry.spans()) == 5
    assert framework.kind is SpanKind.INTERNAL
    assert framework.parent is None
    assert framework.status.status_code is StatusCode.UNSET
    assert dict(framework.attributes) == {
        "email.framework": "aiosmtplib",
        "email.message.count": 1,
        "email.message.sent.count": 1,
    }
    assert_client_span(connect, parent=framework)
    assert_client_span(send_span, parent=framework)
    assert_client_span(starttls, parent=connect)
    assert_client_span(login, parent=connect)
    # The send covers the message transaction only: it starts once connected.
    assert framework.start_time <= connect.start_time < connect.end_time <= send_span.start_time
    assert send_span.end_time <= framework.end_time
    assert dict(send_span.attributes) == {
        **base(starttls_server, "send"),
        "email.from.address": "a***@example.org",
        "email.to.address": ("b***@example.com",),
        "email.recipient.count": 1,
        "email.message_id": "<order-1042@shop.example.org>",
        "email.message.size": len(starttls_server.handler.received[-1].data),
        "email.attachments.count": 1,
        "email.provider.message_id": queue_id(reply),
        "email.smtp.response.code": 250,
    }
    assert dict(login.attributes) == {
        **base(starttls_server, "login"),
        "email.smtp.response.code": 235,
    }
    # Counted once, by the send beneath: one log record, in that span.
    assert telemetry.counter("email.client.sent.messages") == 1
    assert_send_log(telemetry, send_span, SeverityNumber.INFO, [SENDER, "bob@example.com"])
    operations = sorted(
        a["email.operation.name"] for a, _ in telemetry.points("email.client.operation.duration")
    )
    assert operations == ["connect", "login", "send", "starttls"]


def test_module_send_with_a_raw_message_reads_the_envelope(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    message = raw_message(["bob@example.com"], message_id=MESSAGE_ID)

    run(
        aiosmtplib.send(
            message,
            sender=SENDER,
            recipients=["bob@example.com", "erin@example.com"],
            hostname=smtp_server.host,
            port=smtp_server.port,
            local_hostname=LOCAL_HOSTNAME,
        )
    )

    span = only(telemetry.spans("send smtp"))
    assert span.attributes["email.recipient.count"] == 2
    assert span.attributes["email.to.address"] == ("b***@example.com",)
    assert span.attributes["email.message_id"] == MESSAGE_ID
    assert span.attributes["email.message.size"] == len(message)
    assert [s.name for s in telemetry.spans()] == ["connect smtp", "send smtp", "send aiosmtplib"]


@pytest.mark.parametrize("variant", ["sendmail_sync", "send_message_sync"])
def test_sync_variants_send_under_the_callers_current_span(
    telemetry: Telemetry, smtp_server: Server, variant: str
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    smtp = client(smtp_server)

    with tracer.start_as_current_span("checkout") as caller:
        if variant == "sendmail_sync":
            refused, reply = smtp.sendmail_sync(
                SENDER, ["bob@example.com"], raw_message(["bob@example.com"])
            )
        else:
            refused, reply = smtp.send_message_sync(email_message(["bob@example.com"]))

    assert refused == {}
    send = only(telemetry.spans("send smtp"))
    connect = only(telemetry.spans("connect smtp"))
    caller_span = only(telemetry.spans("checkout"))
    assert_client_span(send, parent=caller_span)
    assert_client_span(connect, parent=caller_span)
    assert send.context.trace_id == caller.get_span_context().trace_id
    assert send.attributes["email.provider.message_id"] == queue_id(reply)
    assert_send_log(telemetry, send, SeverityNumber.INFO, [SENDER, "bob@example.com"])


# -- each span covers the awaited network work ------------------------------------------


SLEEP = 0.2


async def await_late(pending: Awaitable[Any]) -> Tuple[int, int]:
    """Await a coroutine SLEEP seconds after it was created (it exists, nothing
    was sent yet): (when it was awaited, when it returned), in ns."""
    await asyncio.sleep(SLEEP)
    awaited = time.time_ns()
    await pending
    return awaited, time.time_ns()


def assert_send_span_within(
    telemetry: Telemetry, handler: TimedHandler, awaited: int, returned: int
) -> None:
    """The send span starts once awaited, before the server saw MAIL, and
    ends after its DATA reply, before the call returned."""
    span = only(telemetry.spans("send smtp"))
    assert awaited <= span.start_time <= handler.mail_at[-1]
    assert handler.data_replied_at[-1] <= span.end_time <= returned
    # The server took DATA_DELAY to answer DATA: the span holds it.
    assert duration_s(span) >= TimedHandler.DATA_DELAY


def test_send_span_starts_when_awaited_and_ends_after_the_reply(
    telemetry: Telemetry, timed_server: Server
) -> None:
    handler = timed_server.handler
    assert isinstance(handler, TimedHandler)

    async def main() -> Tuple[int, int]:
        smtp = client(timed_server)
        await smtp.connect()
        try:
            return await await_late(
                smtp.sendmail(SENDER, ["slow@example.com"], raw_message(["slow@example.com"]))
            )
        finally:
            smtp.close()

    awaited, returned = run(main())

    assert_send_span_within(telemetry, handler, awaited, returned)
    point = histogram(
        telemetry,
        "email.client.operation.duration",
        email__system="smtp",
        email__operation__name="send",
        server__address="127.0.0.1",
    )
    # The metric holds the server's delay too, and not the sleep between
    # creating the coroutine and awaiting it.
    assert TimedHandler.DATA_DELAY <= point.sum <= (returned - awaited) / 1e9


@pytest.mark.parametrize("how", ["send_message", "aiosmtplib.send"])
def test_other_send_entry_points_start_when_awaited(
    telemetry: Telemetry, timed_server: Server, how: str
) -> None:
    handler = timed_server.handler
    assert isinstance(handler, TimedHandler)
    message = email_message(["slow@example.com"])

    async def main() -> Tuple[int, int]:
        smtp = client(timed_server)
        if how == "send_message":
            await smtp.connect()
            pending = smtp.send_message(message)
        else:
            pending = aiosmtplib.send(
                message,
                hostname=timed_server.host,
                port=timed_server.port,
                local_hostname=LOCAL_HOSTNAME,
            )
        try:
            return await await_late(pending)
        finally:
            smtp.close()

    awaited, returned = run(main())

    assert_send_span_within(telemetry, handler, awaited, returned)


def test_connect_starttls_and_login_spans_start_when_awaited(
    telemetry: Telemetry, starttls_server: Server, client_tls: Any
) -> None:
    windows: List[Tuple[int, int]] = []

    async def main() -> None:
        smtp = client(starttls_server, tls_context=client_tls)
        try:
            windows.append(await await_late(smtp.connect()))
            windows.append(await await_late(smtp.starttls()))
            windows.append(await await_late(smtp.login(USER, PASSWORD)))
        finally:
            smtp.close()

    run(main())

    spans = [only(telemetry.spans(f"{op} smtp")) for op in ("connect", "starttls", "login")]
    for span, (awaited, returned) in zip(spans, windows):
        assert awaited <= span.start_time < span.end_time <= returned, span.name


# -- uninstrument ------------------------------------------------------------------------

PATCHED_METHODS = ("connect", "starttls", "login", "mail", "sendmail", "send_message")


def test_every_patch_is_pinned_here() -> None:
    assert sorted(p.name for p in PATCHES if p.module == "aiosmtplib") == sorted(
        ["send", *(f"SMTP.{name}" for name in PATCHED_METHODS)]
    )
    assert [p.name for p in PATCHES if p.module == "aiosmtplib.api"] == ["send"]


@pytest.mark.parametrize("instrumentor", [EmailInstrumentor, AiosmtplibInstrumentor])
def test_uninstrument_restores_every_patched_callable(instrumentor: Any) -> None:
    originals = {name: aiosmtplib.SMTP.__dict__[name] for name in PATCHED_METHODS}
    original_send, original_api_send = aiosmtplib.send, aiosmtplib.api.send
    assert original_send is original_api_send
    for original in (*originals.values(), original_send):
        assert not isinstance(original, wrapt.FunctionWrapper)  # nothing left over

    telemetry = Telemetry()
    instrumentor().instrument(**telemetry.providers())
    instrumentor().instrument(**telemetry.providers())  # idempotent: wrapped once
    try:
        for name, original in originals.items():
            wrapped = aiosmtplib.SMTP.__dict__[name]
            assert isinstance(wrapped, wrapt.FunctionWrapper), name
            assert wrapped.__wrapped__ is original, name
        for wrapped in (aiosmtplib.send, aiosmtplib.api.send):
            assert isinstance(wrapped, wrapt.FunctionWrapper)
            assert wrapped.__wrapped__ is original_send
    finally:
        instrumentor().uninstrument()

    for name, original in originals.items():
        assert aiosmtplib.SMTP.__dict__[name] is original, name
    assert aiosmtplib.send is original_send
    assert aiosmtplib.api.send is original_api_send
    instrumentor().uninstrument()  # a second time changes nothing
    assert aiosmtplib.SMTP.__dict__["sendmail"] is originals["sendmail"]


def test_after_uninstrument_nothing_is_recorded(smtp_server: Server) -> None:
    telemetry = Telemetry()
    EmailInstrumentor().instrument(**telemetry.providers())
    EmailInstrumentor().uninstrument()

    run(
        aiosmtplib.send(
            raw_message(["bob@example.com"]),
            sender=SENDER,
            recipients=["bob@example.com"],
            hostname=smtp_server.host,
            port=smtp_server.port,
            local_hostname=LOCAL_HOSTNAME,
        )
    )

    assert telemetry.spans() == []
    assert telemetry.points("email.client.sent.messages") == []
    assert telemetry.logs() == []


def test_disabling_aiosmtplib_by_name_leaves_it_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = aiosmtplib.SMTP.__dict__["sendmail"]
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "aiosmtplib")
    with instrumented():
        assert aiosmtplib.SMTP.__dict__["sendmail"] is original
        assert not isinstance(aiosmtplib.send, wrapt.FunctionWrapper)
