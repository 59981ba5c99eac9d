"""Trace context over SMTP, against real aiosmtpd servers.

With ``propagate="headers"`` every traced send (smtplib ``sendmail`` and
``send_message``; aiosmtplib ``sendmail``, ``send_message`` and ``send``)
delivers ``X-Otel-Traceparent`` (the send span's context) and
``X-Otel-Sent-At``, and ``ENVID=<traceparent>`` in MAIL FROM when the server
offered DSN at an EHLO the client already made; the application's message
and options are never changed, and what it set itself is kept. For
``aiosmtplib.send`` the ``send smtp`` inside it injects (its own span is
``send aiosmtplib``): with ENVID when its connect made an EHLO (``start_tls``
left at ``None``), without when ``start_tls=False`` left the EHLO to the
send itself. With
``metadata`` (the default) and ``none`` the server receives, byte for byte,
what an uninstrumented send delivers."""

from __future__ import annotations

import asyncio
import email
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from opentelemetry.sdk.trace import ReadableSpan

from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email._smtp import (
    message_with_headers,
    raw_with_headers,
    with_envid,
)
from tests.conftest import Telemetry
from tests.smtp.aiosmtplib_support import LOCAL_HOSTNAME
from tests.support.smtp_server import (
    PASSWORD,
    USER,
    Received,
    ScenarioHandler,
    Server,
    SMTPServer,
    _authenticator,
    free_port,
)

SENDER = "orders@shop.example"
RECIPIENTS = ["alice@gmail.com", "bob@example.org"]
TRACEPARENT = "X-Otel-Traceparent"
SENT_AT = "X-Otel-Sent-At"


# -- a server that offers DSN ---------------------------------------------------------


class DsnHandler(ScenarioHandler):
    """The scenario handler, advertising DSN after EHLO and keeping the
    options of every RCPT."""

    def __init__(self) -> None:
        super().__init__()
        self.rcpt_options: List[List[str]] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: List[str]
    ) -> List[str]:
        session.host_name = hostname  # the hook's job, once it is defined
        return [*responses[:-1], "250-DSN", responses[-1]]

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: List[str]
    ) -> str:
        self.rcpt_options.append(list(options))
        return await super().handle_RCPT(server, session, envelope, address, options)


class _DsnSMTP(SMTPServer):
    """aiosmtpd answers 555 to a MAIL FROM parameter it does not implement:
    this one takes the DSN parameters (and passes them to the handler)."""

    def _getparams(self, params: Sequence[str]) -> Optional[Dict[str, Any]]:
        found = super()._getparams(params)
        if found is not None:
            found.pop("ENVID", None)
            found.pop("RET", None)
        return found


class _DsnController(Controller):
    def factory(self) -> Any:
        return _DsnSMTP(self.handler, **self.SMTP_kwargs)


def start_dsn_server(tls_context: Optional[ssl.SSLContext] = None) -> Server:
    handler = DsnHandler()
    port = free_port()
    kwargs: Dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": port,
        "ready_timeout": 10.0,
        "data_size_limit": 50 * 1024 * 1024,
        "enable_SMTPUTF8": True,
        "authenticator": _authenticator,
        "auth_require_tls": False,
    }
    if tls_context is not None:
        kwargs["tls_context"] = tls_context
    controller = _DsnController(handler, **kwargs)
    controller.start()
    return Server("127.0.0.1", port, handler, controller)


@pytest.fixture(scope="module")
def dsn_server() -> Iterator[Server]:
    server = start_dsn_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dsn_starttls_server(server_tls: ssl.SSLContext) -> Iterator[Server]:
    server = start_dsn_server(server_tls)
    yield server
    server.stop()


# -- messages and the ways to send them -------------------------------------------------


def raw(newline: str, *, extra: str = "") -> str:
    lines = [
        f"From: Shop <{SENDER}>",
        f"To: {', '.join(RECIPIENTS)}",
        "Subject: Your order #1042",
        "Message-ID: <order-1042@shop.example>",
    ]
    if extra:
        lines.append(extra)
    lines += ["", "Thank you for your order.", "It ships tomorrow.", ""]
    return newline.join(lines)


def message_object(*, extra: Optional[Tuple[str, str]] = None) -> EmailMessage:
    """A text message: it flattens to the same bytes every time."""
    message = EmailMessage()
    message["From"] = f"Shop <{SENDER}>"
    message["To"] = ", ".join(RECIPIENTS)
    message["Subject"] = "Your order #1042"
    message["Message-ID"] = "<order-1042@shop.example>"
    if extra:
        message[extra[0]] = extra[1]
    message.set_content("Thank you for your order.\nIt ships tomorrow.\n")
    return message


MESSAGES: Dict[str, Callable[[], Any]] = {
    "str_crlf": lambda: raw("\r\n"),
    "str_lf": lambda: raw("\n"),
    "bytes_crlf": lambda: raw("\r\n").encode("ascii"),
    "bytes_lf": lambda: raw("\n").encode("ascii"),
    "message": message_object,
}
RAW_KINDS = ("str_crlf", "str_lf", "bytes_crlf", "bytes_lf")

# (server, message, keyword arguments) -> None. Each path makes an EHLO
# before it sends, as a client that logged in or checked extensions did.
Path = Callable[[Server, Any, Dict[str, Any]], None]


def smtplib_sendmail(server: Server, message: Any, kwargs: Dict[str, Any]) -> None:
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        client.sendmail(SENDER, RECIPIENTS, message, **kwargs)


def smtplib_send_message(server: Server, message: Any, kwargs: Dict[str, Any]) -> None:
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.ehlo()
        client.send_message(message, **kwargs)


async def _aiosmtplib_client(server: Server) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(
        hostname=server.host, port=server.port, local_hostname=LOCAL_HOSTNAME, start_tls=False
    )
    await client.connect()
    await client.ehlo()
    return client


def aiosmtplib_sendmail(server: Server, message: Any, kwargs: Dict[str, Any]) -> None:
    async def main() -> None:
        client = await _aiosmtplib_client(server)
        try:
            await client.sendmail(SENDER, RECIPIENTS, message, **kwargs)
        finally:
            client.close()

    asyncio.run(main())


def aiosmtplib_send_message(server: Server, message: Any, kwargs: Dict[str, Any]) -> None:
    async def main() -> None:
        client = await _aiosmtplib_client(server)
        try:
            await client.send_message(message, **kwargs)
        finally:
            client.close()

    asyncio.run(main())


def aiosmtplib_send(server: Server, message: Any, kwargs: Dict[str, Any]) -> None:
    """``start_tls`` left at ``None``: connect makes an EHLO to look for
    STARTTLS (these servers offer none), so the send inside knows about DSN."""
    asyncio.run(
        aiosmtplib.send(
            message,
            sender=SENDER,
            recipients=RECIPIENTS,
            hostname=server.host,
            port=server.port,
            local_hostname=LOCAL_HOSTNAME,
            **kwargs,
        )
    )


def aiosmtplib_send_no_starttls(server: Server, message: Any, kwargs: Dict[str, Any]) -> None:
    """``start_tls=False``: connect makes no EHLO; sendmail makes it inside
    the send span, too late for ENVID."""
    asyncio.run(
        aiosmtplib.send(
            message,
            sender=SENDER,
            recipients=RECIPIENTS,
            hostname=server.host,
            port=server.port,
            local_hostname=LOCAL_HOSTNAME,
            start_tls=False,
            **kwargs,
        )
    )


@dataclass
class Case:
    id: str
    path: Path
    kind: str  # a key of MESSAGES
    envid: bool  # the path can know the server's extensions before it sends


def _cases() -> List[Case]:
    cases: List[Case] = []
    for name, path, kinds, envid in (
        ("smtplib.sendmail", smtplib_sendmail, RAW_KINDS, True),
        ("smtplib.send_message", smtplib_send_message, ("message",), True),
        ("aiosmtplib.sendmail", aiosmtplib_sendmail, RAW_KINDS, True),
        ("aiosmtplib.send_message", aiosmtplib_send_message, ("message",), True),
        ("aiosmtplib.send", aiosmtplib_send, (*RAW_KINDS, "message"), True),
        ("aiosmtplib.send_start_tls_false", aiosmtplib_send_no_starttls, ("str_crlf",), False),
    ):
        cases.extend(Case(f"{name}-{kind}", path, kind, envid) for kind in kinds)
    return cases


CASES = _cases()
ENVID_CASES = [c for c in CASES if c.kind in ("str_crlf", "message")]


# -- helpers ------------------------------------------------------------------------------


def traceparent(span: ReadableSpan) -> str:
    context = span.context
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def size_of(span: ReadableSpan) -> int:
    size = (span.attributes or {})["email.message.size"]
    assert isinstance(size, int)
    return size


def send(case: Case, server: Server, message: Any = None, **kwargs: Any) -> Received:
    """Send once; what the server received."""
    count = len(server.handler.received)
    case.path(server, MESSAGES[case.kind]() if message is None else message, kwargs)
    assert len(server.handler.received) == count + 1
    return server.handler.received[-1]


def envids(received: Received) -> List[str]:
    """The ENVID parameters of the MAIL FROM (aiosmtpd upper-cases them)."""
    return [o for o in received.mail_options if o.upper().startswith("ENVID=")]


def mode(instrument: Callable[..., Telemetry], propagate: str) -> Telemetry:
    """Instrument afresh with ``propagate``."""
    EmailInstrumentor().uninstrument()
    return instrument(propagate=propagate)


def carried(received: Received) -> Tuple[Optional[str], Optional[str]]:
    parsed = email.message_from_bytes(received.data)
    return parsed[TRACEPARENT], parsed[SENT_AT]


# -- headers mode: every send path ---------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_headers_mode_adds_both_headers_and_nothing_else(
    case: Case, instrument: Callable[..., Telemetry], smtp_server: Server
) -> None:
    before = mode(instrument, "metadata")
    plain = send(case, smtp_server)
    plain_size = size_of(before.span("send smtp"))

    telemetry = mode(instrument, "headers")
    app_message = MESSAGES[case.kind]()
    snapshot = app_message.as_bytes() if isinstance(app_message, Message) else app_message
    received = send(case, smtp_server, app_message)
    span = telemetry.span("send smtp")

    # The headers carry the send span's context and the send time.
    tp, sent_at = carried(received)
    assert tp == traceparent(span)
    assert sent_at is not None and sent_at.isdigit()
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time // 10**6 <= int(sent_at) <= span.end_time // 10**6

    # ...added where the message's line ending puts them, the rest unchanged:
    # first lines of a serialised message, last headers of a message object.
    def lines(eol: bytes) -> bytes:
        return f"{TRACEPARENT}: {tp}".encode() + eol + f"{SENT_AT}: {sent_at}".encode() + eol

    on_wire = lines(b"\r\n" if plain.data.split(b"\n", 1)[0].endswith(b"\r") else b"\n")
    if case.kind == "message":
        end = plain.data.index(b"\r\n\r\n") + 2
        assert received.data == plain.data[:end] + on_wire + plain.data[end:]
    else:
        assert received.data == on_wire + plain.data
    # Same envelope; no ENVID: this server does not offer DSN.
    assert (received.sender, received.recipients) == (plain.sender, plain.recipients)
    size = size_of(span)
    assert f"SIZE={size}" in received.mail_options
    assert [o for o in received.mail_options if not o.startswith("SIZE=")] == [
        o for o in plain.mail_options if not o.startswith("SIZE=")
    ]

    # The application's message is untouched.
    if isinstance(app_message, Message):
        assert app_message.as_bytes() == snapshot
        assert TRACEPARENT not in app_message and SENT_AT not in app_message
    else:
        assert app_message == snapshot

    # email.message.size counts what was sent, the headers included, as the
    # library counts a message (a LF message's line ends as sent, or as given:
    # aiosmtplib before 5 declares the given length).
    grown = size - plain_size
    if case.kind.endswith("_lf"):
        assert grown in (len(lines(b"\n")), len(lines(b"\r\n")))
    else:
        assert grown == len(lines(b"\r\n"))


@pytest.mark.parametrize("kind", ["message", "str_crlf"])
def test_each_send_of_the_same_message_carries_its_own_span(
    kind: str, instrument: Callable[..., Telemetry], smtp_server: Server
) -> None:
    telemetry = instrument(propagate="headers")
    path = smtplib_send_message if kind == "message" else smtplib_sendmail
    case = Case(kind, path, kind, True)
    message = MESSAGES[kind]()
    first = send(case, smtp_server, message)
    second = send(case, smtp_server, message)
    spans = telemetry.spans("send smtp")
    assert [carried(first)[0], carried(second)[0]] == [traceparent(s) for s in spans]
    for received in (first, second):
        parsed = email.message_from_bytes(received.data)
        assert len(parsed.get_all(TRACEPARENT) or ()) == 1
        assert len(parsed.get_all(SENT_AT) or ()) == 1


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.kind in ("str_lf", "bytes_crlf", "message")],
    ids=lambda c: c.id,
)
def test_a_header_the_app_set_is_kept_and_the_message_left_alone(
    case: Case, instrument: Callable[..., Telemetry], smtp_server: Server
) -> None:
    newline = "\r\n" if case.kind != "str_lf" else "\n"
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def app_message() -> Any:
        if case.kind == "message":
            return message_object(extra=("x-otel-traceparent", own))
        text = raw(newline, extra=f"x-otel-traceparent: {own}")
        return text.encode("ascii") if case.kind.startswith("bytes") else text

    plain = send(case, smtp_server, app_message())
    telemetry = instrument(propagate="headers")
    received = send(case, smtp_server, app_message())
    assert telemetry.spans("send smtp")
    # The app's value, once, and no send time paired with it.
    assert carried(received) == (own, None)
    assert received.data == plain.data
    assert received.mail_options == plain.mail_options


# -- metadata and none: nothing changes ----------------------------------------------------


@pytest.mark.parametrize("propagate", ["metadata", "none"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_metadata_and_none_deliver_what_an_uninstrumented_send_does(
    case: Case, propagate: str, instrument: Callable[..., Telemetry], dsn_server: Server
) -> None:
    # On a server offering DSN: no ENVID either.
    plain = send(case, dsn_server)
    telemetry = instrument(propagate=propagate)
    traced = send(case, dsn_server)
    assert telemetry.spans("send smtp"), "the instrumented send was not traced"
    assert traced == plain
    assert envids(traced) == []


def test_metadata_is_the_default(telemetry: Telemetry, smtp_server: Server) -> None:
    case = CASES[0]
    received = send(case, smtp_server)
    assert telemetry.spans("send smtp")
    assert carried(received) == (None, None)


# -- ENVID --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ENVID_CASES, ids=lambda c: c.id)
def test_envid_is_sent_when_the_server_offers_dsn(
    case: Case, instrument: Callable[..., Telemetry], dsn_server: Server
) -> None:
    plain = send(case, dsn_server, mail_options=["BODY=8BITMIME"])
    telemetry = instrument(propagate="headers")
    options = ["BODY=8BITMIME"]
    received = send(case, dsn_server, mail_options=options)
    span = telemetry.span("send smtp")
    assert options == ["BODY=8BITMIME"]  # the app's list, unchanged
    if not case.envid:  # aiosmtplib.send(start_tls=False): no EHLO before the send
        assert envids(received) == []
        assert carried(received)[0] == traceparent(span)
        return
    assert envids(received) == [f"ENVID={traceparent(span)}".upper()]
    # Only ENVID was added: never RET, NOTIFY or anything else.
    assert [o for o in received.mail_options if not o.startswith(("ENVID=", "SIZE="))] == [
        o for o in plain.mail_options if not o.startswith("SIZE=")
    ]
    handler = dsn_server.handler
    assert isinstance(handler, DsnHandler)
    assert handler.rcpt_options[-len(RECIPIENTS) :] == [[]] * len(RECIPIENTS)
    assert carried(received)[0] == traceparent(span)


@pytest.mark.parametrize("case", ENVID_CASES, ids=lambda c: c.id)
def test_no_envid_when_the_server_does_not_offer_dsn(
    case: Case, instrument: Callable[..., Telemetry], smtp_server: Server
) -> None:
    telemetry = instrument(propagate="headers")
    # aiosmtpd refuses an ENVID it was not offering (555): the send going
    # through is the proof none was sent.
    received = send(case, smtp_server)
    assert envids(received) == []
    assert carried(received)[0] == traceparent(telemetry.span("send smtp"))


@pytest.mark.parametrize("case", [c for c in ENVID_CASES if c.envid], ids=lambda c: c.id)
def test_an_envid_the_app_set_is_kept(
    case: Case, instrument: Callable[..., Telemetry], dsn_server: Server
) -> None:
    telemetry = instrument(propagate="headers")
    options = ("envid=order-1042",)
    received = send(case, dsn_server, mail_options=options)
    assert envids(received) == ["ENVID=ORDER-1042"]
    assert options == ("envid=order-1042",)
    # The headers still carry the span.
    assert carried(received)[0] == traceparent(telemetry.span("send smtp"))


def test_smtplib_envid_with_positional_mail_options(
    instrument: Callable[..., Telemetry], dsn_server: Server
) -> None:
    telemetry = instrument(propagate="headers")
    options = ["BODY=8BITMIME"]
    with smtplib.SMTP(dsn_server.host, dsn_server.port, timeout=5) as client:
        client.ehlo()
        client.sendmail(SENDER, RECIPIENTS, raw("\r\n"), options)
    received = dsn_server.handler.received[-1]
    assert options == ["BODY=8BITMIME"]
    assert "BODY=8BITMIME" in received.mail_options
    assert envids(received) == [f"ENVID={traceparent(telemetry.span('send smtp'))}".upper()]


def test_smtplib_sends_no_ehlo_of_its_own_for_envid(
    instrument: Callable[..., Telemetry], dsn_server: Server
) -> None:
    """A fresh connection whose first command is the send: smtplib makes its
    EHLO inside sendmail, after the span started, so no ENVID (and no EHLO
    is added for it): the headers still go."""
    telemetry = instrument(propagate="headers")
    with smtplib.SMTP(dsn_server.host, dsn_server.port, timeout=5) as client:
        client.sendmail(SENDER, RECIPIENTS, raw("\r\n"))
        received = dsn_server.handler.received[-1]
        assert envids(received) == []
        # The next send on this connection knows the server offers DSN.
        client.sendmail(SENDER, RECIPIENTS, raw("\r\n"))
    second = dsn_server.handler.received[-1]
    first_span, second_span = telemetry.spans("send smtp")
    assert carried(received)[0] == traceparent(first_span)
    assert envids(second) == [f"ENVID={traceparent(second_span)}".upper()]


def test_envid_after_starttls_and_login(
    instrument: Callable[..., Telemetry],
    dsn_starttls_server: Server,
    client_tls: ssl.SSLContext,
) -> None:
    """smtplib forgets the extensions on STARTTLS; login makes the EHLO that
    learns them again, so the send after it carries ENVID."""
    telemetry = instrument(propagate="headers")
    server = dsn_starttls_server
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        client.starttls(context=client_tls)
        client.login(USER, PASSWORD)
        client.send_message(message_object())
    received = server.handler.received[-1]
    span = telemetry.span("send smtp")
    assert envids(received) == [f"ENVID={traceparent(span)}".upper()]
    assert carried(received)[0] == traceparent(span)

    async def main() -> None:
        async with aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            local_hostname=LOCAL_HOSTNAME,
            tls_context=client_tls,
            username=USER,
            password=PASSWORD,
        ) as client:
            await client.send_message(message_object())

    telemetry.clear()
    asyncio.run(main())
    received = server.handler.received[-1]
    span = telemetry.span("send smtp")
    assert envids(received) == [f"ENVID={traceparent(span)}".upper()]
    assert carried(received)[0] == traceparent(span)


# -- the rules, directly ---------------------------------------------------------------------


FIELDS = {TRACEPARENT: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", SENT_AT: "1"}
LINES = f"{TRACEPARENT}: {FIELDS[TRACEPARENT]}\r\n{SENT_AT}: 1\r\n"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("A: b\r\n\r\nbody\n", LINES + "A: b\r\n\r\nbody\n"),
        ("A: b\n\nbody\r\n", LINES.replace("\r\n", "\n") + "A: b\n\nbody\r\n"),
        # no header block at all: ours become it
        ("\r\nbody", LINES + "\r\nbody"),
        ("\nbody", LINES.replace("\r\n", "\n") + "\nbody"),
        # a field with the obsolete space before the colon, a folded line
        (b"Subject : x\n y\n\nb", (LINES.replace("\r\n", "\n") + "Subject : x\n y\n\nb").encode()),
        # our name in the body, or inside a folded value, is not a header
        (
            "A: b\r\n X-Otel-Sent-At: 2\r\n\r\nX-Otel-Traceparent: x\r\n",
            LINES + "A: b\r\n X-Otel-Sent-At: 2\r\n\r\nX-Otel-Traceparent: x\r\n",
        ),
        # bytes outside ASCII stay as they are
        (b"A: \xe9\r\n\r\n\xff", LINES.encode() + b"A: \xe9\r\n\r\n\xff"),
        # no line break: CRLF
        ("A: b", LINES + "A: b"),
        # the app's header, any case: left alone
        ("a: b\r\nx-otel-sent-at: 3\r\n\r\n", None),
        (b"X-OTEL-TRACEPARENT: z\n\n", None),
        # not a message that starts with a header or an empty line
        ("Hello world\r\n", None),
        ("", None),
    ],
)
def test_raw_with_headers(message: Any, expected: Any) -> None:
    assert raw_with_headers(message, FIELDS) == expected


def test_message_with_headers_copies_the_header_list() -> None:
    message = message_object()
    before = message.as_bytes()
    keys = message.keys()
    clone = message_with_headers(message, FIELDS)
    assert clone is not None
    clone["X-Another"] = "y"  # the clone's list is its own
    del clone["Subject"]
    assert message.keys() == keys and message.as_bytes() == before
    assert clone[TRACEPARENT] == FIELDS[TRACEPARENT] and clone[SENT_AT] == "1"
    assert clone.get_payload() == message.get_payload()
    assert message_with_headers(message_object(extra=("x-otel-sent-at", "5")), FIELDS) is None


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, ["ENVID=00-ab"]),
        ((), ("ENVID=00-ab",)),
        (["SIZE=5", "BODY=8BITMIME"], ["SIZE=5", "BODY=8BITMIME", "ENVID=00-ab"]),
        (("SMTPUTF8",), ("SMTPUTF8", "ENVID=00-ab")),
        (["envid=mine"], None),
        (["ENVID = mine"], None),
        (iter(["SIZE=5"]), None),  # a generator is the library's to iterate
        ([b"SIZE=5"], None),
        ("SIZE=5", None),
    ],
)
def test_with_envid(options: Any, expected: Any) -> None:
    result = with_envid(options, "00-ab")
    assert result == expected
    if expected is not None:
        assert type(result) is type(expected)


@pytest.mark.parametrize("envid", ["a" * 101, "a+b", "a=b", "a b", "é"])
def test_with_envid_only_takes_short_xtext(envid: str) -> None:
    assert with_envid([], envid) is None
    assert with_envid([], "a" * 100) == ["ENVID=" + "a" * 100]
