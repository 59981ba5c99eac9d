"""Adapter for Twilio SendGrid's ``sendgrid`` SDK (v3 Mail Send).

Two ways into ``POST /v3/mail/send``, one ``send sendgrid`` span each:

- ``SendGridAPIClient.send(message)`` (``BaseInterface.send``), with a
  ``sendgrid.helpers.mail.Mail`` or the request body as a dict;
- ``sg.client.mail.send.post(request_body=...)``, python_http_client's
  dynamic URL builder, seen at ``Client._make_request``: the narrowest call
  that knows the URL. Only ``POST .../mail/send`` is traced there; the
  ``_make_request`` that ``send`` makes inside adds nothing (one span).

A ``Mail`` with several personalizations is one message to SendGrid: one
span, its recipients the union of every personalization's to, cc and bcc.
The provider id is the ``X-Message-Id`` response header (202, empty body),
and the first category the app gave the message (``categories``) is its
``email.category``. SendGrid reports no per-recipient outcome at send time,
and the SDK does not retry.

Delivery events: each send carries the send span's ``traceparent`` and the
send time in the body's top-level ``custom_args``, which SendGrid merges
into every event of its Event Webhook (``delivery/receivers/sendgrid.py``).
Through ``send`` a ``Mail`` is sent as its ``Mail.get()`` body (what
``send`` posts anyway) with ``custom_args`` added; a direct
``client.mail.send.post`` gets a copy of its urllib request with the new
body. The app's own custom args are kept; nothing is added when it set one
of ours, when they are not a mapping, or when the total would pass
SendGrid's 10,000 bytes. Never ``categories``: they are analytics groups.

Usage::

    from opentelemetry.instrumentation.email.providers.sendgrid import SendgridInstrumentor
    SendgridInstrumentor().instrument()
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import sendgrid  # noqa: F401  (missing SDK: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    Operation,
    Propagation,
    arg,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._propagation import merged_mapping
from opentelemetry.instrumentation.email.providers._http import (
    first_tag,
    http_error,
    response_status,
    server_of,
)

_logger = logging.getLogger(__name__)

_MAIL_SEND = "/mail/send"


# -- the request ---------------------------------------------------------------------------


def _helper_text(value: Any, attribute: str) -> Optional[str]:
    """A plain string, or the string inside a helper object (``Subject``,
    ``TemplateId``)."""
    if isinstance(value, str):
        return value or None
    inner = getattr(value, attribute, None)
    return inner if isinstance(inner, str) and inner else None


def _personalization_fields(personalization: Any) -> Tuple[Any, Any, Any, Any, Any]:
    """to, cc, bcc, from and subject of one personalization, dict or object."""
    if isinstance(personalization, dict):
        return (
            personalization.get("to"),
            personalization.get("cc"),
            personalization.get("bcc"),
            personalization.get("from"),
            personalization.get("subject"),
        )
    return (
        getattr(personalization, "tos", None),
        getattr(personalization, "ccs", None),
        getattr(personalization, "bccs", None),
        getattr(personalization, "from_email", None),
        getattr(personalization, "subject", None),
    )


def _first_category(message: Any) -> Optional[str]:
    """The first category the app gave the message: the first of a body's
    ``categories``; for a ``Mail``, the first it added (``add_category`` and
    the ``category`` setter put each new ``Category`` in front, so that one
    is last in ``Mail.categories``)."""
    if isinstance(message, dict):
        return first_tag(message.get("categories"))
    categories = getattr(message, "categories", None)
    if not isinstance(categories, list) or not categories:
        return None
    return _helper_text(categories[-1], "name")


def _read_mail(attempt: EmailAttempt, message: Any) -> None:
    """Fill the attempt from a v3 mail/send body: a dict, or a ``Mail``
    object read through its properties (never ``Mail.get()``, which builds
    the whole body again)."""
    if isinstance(message, dict):
        get: Callable[[str], Any] = message.get
        personalizations = get("personalizations")
        sender, subject, template = get("from"), get("subject"), get("template_id")
        attachments = get("attachments")
    else:
        personalizations = getattr(message, "personalizations", None)
        sender = getattr(message, "from_email", None)
        subject = getattr(message, "subject", None)
        template = getattr(message, "template_id", None)
        attachments = getattr(message, "attachments", None)
    attempt.category = _first_category(message)
    seen: set[str] = set()
    to: List[str] = []
    cc: List[str] = []
    bcc: List[str] = []
    fallback_sender: Any = None
    fallback_subject: Any = None
    for personalization in personalizations if isinstance(personalizations, list) else ():
        p_to, p_cc, p_bcc, p_from, p_subject = _personalization_fields(personalization)
        # Each personalization is delivered on its own, but it is one call and
        # one message to SendGrid: recipients are the union.
        for values, out in ((p_to, to), (p_cc, cc), (p_bcc, bcc)):
            for address in addresses(values):
                if address not in seen:
                    seen.add(address)
                    out.append(address)
        fallback_sender = fallback_sender or p_from
        fallback_subject = fallback_subject or p_subject
    attempt.to, attempt.cc, attempt.bcc = to, cc, bcc
    attempt.sender = first_address(sender) or first_address(fallback_sender)
    attempt.subject = _helper_text(subject, "subject") or _helper_text(fallback_subject, "subject")
    attempt.template_id = _helper_text(template, "template_id")
    if isinstance(attachments, list):
        attempt.attachments = len(attachments)


def _describe_send(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    # The host of the python_http_client the call goes through: changing
    # ``BaseInterface.host`` after construction does not move the client.
    client = getattr(instance, "client", None)
    host = getattr(client, "host", None) or getattr(instance, "host", None)
    attempt.server_address, attempt.server_port = server_of(host)
    try:
        _read_mail(attempt, arg(args, kwargs, 0, "message"))
    except Exception:
        _logger.debug("sendgrid: message not read", exc_info=True)
    return attempt


def _request_of(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    return arg(args, kwargs, 1, "request")


def _is_mail_send(request: Any) -> bool:
    """Whether the urllib request of a ``Client._make_request(opener, request)``
    call is ``POST /v3/mail/send`` (every other SendGrid API call goes through
    it too)."""
    try:
        path = urlsplit(request.full_url).path.rstrip("/")
        return bool(request.get_method() == "POST" and path.endswith(_MAIL_SEND))
    except Exception:
        return False


def _describe_request(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    """``client.mail.send.post(request_body=...)`` called directly: only the
    serialised body is left, so it is parsed once to read the envelope.
    None (not traced) for every other API call."""
    request = _request_of(args, kwargs)
    if not _is_mail_send(request):
        return None
    url = getattr(request, "full_url", None)
    attempt.server_address, attempt.server_port = server_of(url)
    try:
        data = request.data
        if data:
            body = json.loads(data)
            if isinstance(body, dict):
                _read_mail(attempt, body)
    except Exception:
        _logger.debug("sendgrid: request body not read", exc_info=True)
    return attempt


# -- the outcome ---------------------------------------------------------------------------


def _read_response(attempt: EmailAttempt, response: Any) -> None:
    """python_http_client's ``Response`` (``send``) or the urllib response
    (``_make_request``): status, and the id in ``X-Message-Id``."""
    attempt.http_status = response_status(response)
    headers = getattr(response, "headers", None)
    if headers is not None:
        message_id = headers.get("X-Message-Id")
        if message_id:
            attempt.provider_message_id = str(message_id)


# -- propagation: custom_args, merged into every event of the Event Webhook -------------------

# SendGrid: "the total size of your custom arguments may not exceed 10,000
# bytes", counting a personalization's own custom_args with the message's.
_CUSTOM_ARGS_BYTES = 10_000
Args = Tuple[Any, ...]
Injected = Optional[Tuple[Args, Dict[str, Any]]]


def _json_size(value: Any) -> Optional[int]:
    try:
        return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError):
        return None


def _with_custom_args(
    body: Mapping[str, Any], propagation: Propagation
) -> Optional[Dict[str, Any]]:
    """A copy of a v3 mail/send body with the propagation in its top-level
    ``custom_args``; None when that would overwrite the app's (at the top or
    in a personalization, whose values win there) or pass the size limit."""
    fields = propagation.fields()
    personal = 0  # the largest personalization custom_args, merged with ours by SendGrid
    personalizations = body.get("personalizations")
    for personalization in personalizations if isinstance(personalizations, list) else ():
        own = personalization.get("custom_args") if isinstance(personalization, Mapping) else None
        if own is None:
            continue
        size = _json_size(own)
        if not isinstance(own, Mapping) or size is None or any(key in own for key in fields):
            return None
        personal = max(personal, size)
    merged = merged_mapping(
        body.get("custom_args"), fields, max_json_bytes=_CUSTOM_ARGS_BYTES - personal
    )
    if merged is None:
        return None
    result = dict(body)
    result["custom_args"] = merged
    return result


def _replaced(args: Args, kwargs: Dict[str, Any], index: int, name: str, value: Any) -> Injected:
    """The call's arguments with the one at ``index`` (or named ``name``) replaced."""
    if len(args) > index:
        return (*args[:index], value, *args[index + 1 :]), kwargs
    new_kwargs = dict(kwargs)
    new_kwargs[name] = value
    return args, new_kwargs


def _inject_send(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Injected:
    """``send(message)``: the body ``send`` would post (a dict as given, a
    ``Mail``'s ``get()``), copied with our custom args."""
    message = arg(args, kwargs, 0, "message")
    if isinstance(message, dict):
        body: Any = message
    elif callable(getattr(message, "get", None)):
        body = message.get()  # a new dict: BaseInterface.send makes the same call
    else:
        return None
    if not isinstance(body, dict):
        return None
    injected = _with_custom_args(body, propagation)
    if injected is None:
        return None
    return _replaced(args, kwargs, 0, "message", injected)


def _inject_request(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Injected:
    """``client.mail.send.post(request_body=...)``: a copy of the urllib
    request with the JSON body re-serialised as python_http_client does."""
    request = _request_of(args, kwargs)
    data = getattr(request, "data", None)
    if not isinstance(data, (bytes, bytearray)) or not data:
        return None
    try:
        body = json.loads(data)
    except ValueError:  # a body the app serialised with another content type
        return None
    if not isinstance(body, dict):
        return None
    injected = _with_custom_args(body, propagation)
    if injected is None:
        return None
    new_request = copy.copy(request)
    # Own header dicts: setting ``data`` drops a Content-Length header.
    new_request.headers = dict(request.headers)
    new_request.unredirected_hdrs = dict(request.unredirected_hdrs)
    new_request.data = json.dumps(injected).encode("utf-8")
    return _replaced(args, kwargs, 1, "request", new_request)


SEND = Operation(
    c.SYSTEM_SENDGRID,
    c.OP_SEND,
    _describe_send,
    _read_response,
    http_error,
    inject=_inject_send,
)
# Same (system, operation) as SEND: inside ``send`` the core's nested-call
# rule makes this one call through with no span of its own (and no second
# injection: SEND's already rewrote the body).
REQUEST = Operation(
    c.SYSTEM_SENDGRID,
    c.OP_SEND,
    _describe_request,
    _read_response,
    http_error,
    inject=_inject_request,
)

PATCHES = (
    Patch("sendgrid.base_interface", "BaseInterface.send", SEND),
    Patch("python_http_client.client", "Client._make_request", REQUEST),
)


class SendgridInstrumentor(LibraryInstrumentor):
    """Instruments ``SendGridAPIClient.send`` and ``client.mail.send.post``.

    >>> from opentelemetry.instrumentation.email.providers.sendgrid import SendgridInstrumentor
    >>> SendgridInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("sendgrid >= 6.0",)
