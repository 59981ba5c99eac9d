"""What the framework tests (Django, Flask-Mail, fastapi-mail, Red Mail,
yagmail, django-anymail) check alike.

- the application observes the same instrumented and not, scenario by
  scenario (:func:`outcome`, :func:`assert_same_both_ways`);
- a framework call is one trace: its INTERNAL span the root, every transport
  span a CLIENT span beneath it (:func:`assert_one_trace`), and a message
  sent over SMTP is counted once (:func:`assert_sent_over_smtp`);
- a message that never reached the SMTP server (the server down, the login
  or STARTTLS refused) is counted failed once, with an ERROR log record in
  the framework span (:func:`assert_never_reached`);
- with only one framework's adapter instrumented, the framework counts its
  messages itself (:func:`only`, :func:`assert_sent_then_login_refused`);
- uninstrument restores every patched callable (:func:`uninstrumented`);
- no address, subject or body is exported (:data:`SECRET`,
  :func:`assert_secrets_not_exported`).

The points of ``email.client.sent.messages`` are read with the provider
kit's :func:`~tests.providers.kit.sent_messages` and written with its
:func:`~tests.providers.kit.sent_attributes`."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.email import EmailInstrumentor
from tests.conftest import Telemetry, instrumented
from tests.providers.kit import sent_attributes, sent_messages
from tests.support.privacy import assert_nothing_leaked

__all__ = [
    "SECRET",
    "SECRET_BODY",
    "SECRET_SUBJECT",
    "SMTP_SENT",
    "SMTP_SPANS",
    "assert_login_refused",
    "assert_never_reached",
    "assert_one_trace",
    "assert_same_both_ways",
    "assert_secrets_not_exported",
    "assert_sent_over_smtp",
    "assert_sent_then_login_refused",
    "assert_server_down",
    "is_wrapped",
    "only",
    "outcome",
    "sent_messages",
    "smtp_failed",
    "uninstrumented",
]

# -- the differential run ----------------------------------------------------------------


def _as_is(value: Any) -> Any:
    return value


def outcome(call: Callable[[], Any], normalise: Callable[[Any], Any] = _as_is) -> Tuple[str, Any]:
    """What the application gets from ``call``: ``("returned", value)``,
    ``normalise``'d (what legitimately differs between two runs blanked), or
    the exception's type (qualified name) and arguments."""
    try:
        return "returned", normalise(call())
    except Exception as exc:  # the same type and arguments, both ways
        return type(exc).__qualname__, exc.args


def assert_same_both_ways(
    scenarios: Mapping[str, Callable[[], Any]],
    observe: Callable[[Callable[[], Any]], Any] = outcome,
) -> Tuple[Dict[str, Any], Telemetry]:
    """Every scenario observed uninstrumented, then every one instrumented,
    and each observed the same both ways. Returns what was observed (the
    uninstrumented run's) by scenario, for the checks that each did what its
    name says, and the telemetry of the instrumented run."""
    plain = {name: observe(call) for name, call in scenarios.items()}
    with instrumented() as telemetry:
        traced = {name: observe(call) for name, call in scenarios.items()}
    assert traced == plain
    return plain, telemetry


# -- the sent messages counter -------------------------------------------------------------

#: A message counted sent over SMTP to the local server.
SMTP_SENT: Mapping[str, Any] = sent_attributes("smtp")


def smtp_failed(error_type: str, retryable: bool) -> Dict[str, Any]:
    """A message counted failed over SMTP to the local server."""
    return sent_attributes("smtp", error_type, retryable)


# -- one trace per framework call ------------------------------------------------------------

#: The SMTP spans beneath a send that connects and logs in.
SMTP_SPANS = ("connect smtp", "login smtp", "send smtp")


def assert_one_trace(
    telemetry: Telemetry,
    framework: str,
    *,
    status: Optional[StatusCode] = None,
    attributes: Optional[Mapping[str, Any]] = None,
    beneath: Optional[Sequence[str]] = None,
) -> Tuple[Any, List[Any]]:
    """The one span called ``framework``: an INTERNAL root span (of this
    ``status`` and exactly these ``attributes`` when given), every other span
    a CLIENT span in its trace, its child (exactly those called ``beneath``,
    in any order, when given). Returns it and the others."""
    span = telemetry.span(framework)
    assert span.kind is SpanKind.INTERNAL
    assert span.parent is None
    if status is not None:
        assert span.status.status_code is status
    if attributes is not None:
        assert dict(span.attributes) == attributes
    children = [s for s in telemetry.spans() if s is not span]
    if beneath is not None:
        assert sorted(s.name for s in children) == sorted(beneath)
    for child in children:
        assert child.kind is SpanKind.CLIENT, child.name
        assert child.context.trace_id == span.context.trace_id
        assert child.parent is not None and child.parent.span_id == span.context.span_id
    return span, children


def assert_sent_over_smtp(
    telemetry: Telemetry, framework: str, attributes: Mapping[str, Any]
) -> Any:
    """One message sent over SMTP: one trace (:func:`assert_one_trace`), the
    framework span left UNSET with exactly these ``attributes``, the SMTP
    connect, login and send beneath it; the message counted sent once, on
    smtp, and one log record. Returns the framework span."""
    span, _ = assert_one_trace(
        telemetry, framework, status=StatusCode.UNSET, attributes=attributes, beneath=SMTP_SPANS
    )
    assert sent_messages(telemetry) == [(SMTP_SENT, 1)]
    assert len(telemetry.logs()) == 1
    return span


# -- messages that never reached the server ---------------------------------------------------


def assert_never_reached(
    telemetry: Telemetry,
    framework: str,
    error_type: str,
    retryable: bool,
    *,
    at: str,
    count: int = 1,
    silently: bool = False,
    logged: Optional[Mapping[str, Any]] = None,
) -> List[Any]:
    """``count`` messages of one framework call that never reached the SMTP
    server, stopped by the SMTP span ``at`` (``connect smtp``: the server is
    down; ``login smtp``: the login refused; ``starttls smtp``), which failed
    with ``error_type``:

    - one trace (:func:`assert_one_trace`), no ``send smtp`` in it; the
      framework span ERROR with that error.type, or, when the framework
      swallowed the error (``silently``), UNSET without one;
    - the messages counted failed on smtp with that error.type and retryable
      class, no recipient counted, and no duration recorded but those of the
      connect and of the operation that failed;
    - one log record per message at severity ERROR, in the framework span,
      with its ``email.framework`` and the error.type, and each of
      ``logged``'s attributes.

    Returns the log records."""
    span, _ = assert_one_trace(
        telemetry, framework, status=StatusCode.UNSET if silently else StatusCode.ERROR
    )
    assert span.attributes.get("error.type") == (None if silently else error_type)
    assert telemetry.span(at).attributes["error.type"] == error_type
    assert telemetry.spans("send smtp") == []
    assert sent_messages(telemetry) == [(smtp_failed(error_type, retryable), count)]
    logs = telemetry.logs()
    assert len(logs) == count
    expected = {
        "email.framework": span.attributes["email.framework"],
        "error.type": error_type,
        **(logged or {}),
    }
    for log in logs:
        assert (log.severity_number, log.severity_text) == (SeverityNumber.ERROR, "ERROR")
        assert (log.trace_id, log.span_id) == (span.context.trace_id, span.context.span_id)
        assert {k: log.attributes.get(k) for k in expected} == expected
    # Nothing was sent: no recipient counted, no send duration recorded.
    assert telemetry.points("email.client.recipients") == []
    operations = {
        a["email.operation.name"] for a, _ in telemetry.points("email.client.operation.duration")
    }
    assert operations == {"connect", at.split()[0]}
    return logs


def assert_server_down(telemetry: Telemetry, framework: str, **kwargs: Any) -> List[Any]:
    """:func:`assert_never_reached` (``count``, ``silently`` and ``logged``
    as it takes them) for a server that is down: the connect refused,
    retryable."""
    return assert_never_reached(
        telemetry, framework, "connection_refused", True, at="connect smtp", **kwargs
    )


def assert_login_refused(telemetry: Telemetry, framework: str, **kwargs: Any) -> List[Any]:
    """:func:`assert_never_reached` (``silently`` and ``logged`` as it takes
    them) for one message whose login the server refused: 535, not
    retryable."""
    return assert_never_reached(telemetry, framework, "535", False, at="login smtp", **kwargs)


# -- one framework instrumented alone ----------------------------------------------------------


@contextmanager
def only(instrumentor: Any) -> Iterator[Telemetry]:
    """``instrumentor`` alone on, exporting to a new in-memory SDK, for the block."""
    telemetry = Telemetry()
    instrumentor.instrument(**telemetry.providers())
    try:
        yield telemetry
    finally:
        instrumentor.uninstrument()


def assert_sent_then_login_refused(telemetry: Telemetry, framework: str) -> None:
    """Two framework calls and nothing else (no SMTP span: smtplib is not
    instrumented): one message sent, then one whose login was refused,
    smtplib's exception read as the smtplib adapter reads it; each counted
    once by the framework, each logged."""
    assert [s.name for s in telemetry.spans()] == [framework, framework]
    assert [s.attributes.get("error.type") for s in telemetry.spans()] == [None, "535"]
    assert sent_messages(telemetry) == [(smtp_failed("535", False), 1), (SMTP_SENT, 1)]
    assert len(telemetry.logs()) == 2


# -- uninstrument -----------------------------------------------------------------------------


def is_wrapped(owner: Any, name: str) -> bool:
    """Whether ``owner``'s own ``name`` (not an inherited one) is patched."""
    return hasattr(vars(owner)[name], "__wrapped__")


@contextmanager
def uninstrumented(telemetry: Telemetry, *patched: Tuple[Any, str]) -> Iterator[None]:
    """Each ``(owner, name)`` in ``patched`` patched; then, uninstrumented,
    each restored, and the block run for checks of its own; the
    instrumentation on again, against ``telemetry``, afterwards."""
    for owner, name in patched:
        assert is_wrapped(owner, name), (owner, name)
    EmailInstrumentor().uninstrument()
    try:
        for owner, name in patched:
            assert not is_wrapped(owner, name), (owner, name)
        yield
    finally:
        EmailInstrumentor().instrument(**telemetry.providers())


# -- privacy ----------------------------------------------------------------------------------

#: The raw addresses of the privacy tests' messages, which must not be exported.
SECRET: Mapping[str, str] = {
    "from": "qxsender@shop.example",
    "to": "qxalice@gmail.com",
    "cc": "qxbob@example.org",
    "bcc": "qxcarol@corp.example",
}
SECRET_SUBJECT = "Qxsecret subject"
SECRET_BODY = "Qxsecret body text"


def assert_secrets_not_exported(telemetry: Telemetry) -> str:
    """No address of :data:`SECRET`, nor its local part, nor
    :data:`SECRET_SUBJECT` or the start of :data:`SECRET_BODY` in anything
    exported; returns that text (``assert_nothing_leaked``'s)."""
    return assert_nothing_leaked(telemetry, dict(SECRET), SECRET_SUBJECT, SECRET_BODY)
