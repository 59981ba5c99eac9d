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

Usage::

    from opentelemetry.instrumentation.email.providers.sendgrid import SendgridInstrumentor
    SendgridInstrumentor().instrument()
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import sendgrid  # noqa: F401  (missing SDK: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation, arg
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
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


SEND = Operation(c.SYSTEM_SENDGRID, c.OP_SEND, _describe_send, _read_response, http_error)
# Same (system, operation) as SEND: inside ``send`` the core's nested-call
# rule makes this one call through with no span of its own.
REQUEST = Operation(c.SYSTEM_SENDGRID, c.OP_SEND, _describe_request, _read_response, http_error)

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
