"""Adapter for Mailtrap's official SDK (``mailtrap`` 2.x).

``SendingApi.send(mail)`` gives one ``send mailtrap`` span and
``SendingApi.batch_send(params)`` one ``send_batch mailtrap`` span. Every
way the SDK sends goes through them: ``MailtrapClient.send`` /
``batch_send`` build a ``SendingApi`` for the call, and apps may use
``client.sending_api`` directly. Which API answers is the client's choice
of host, read from the ``HttpClient`` the ``SendingApi`` holds: the
Email Sending API (``send.api.mailtrap.io``), bulk (``bulk.api.mailtrap.io``,
``bulk=True``), the sandbox (``sandbox.api.mailtrap.io``, ``sandbox=True``
with an ``inbox_id``, posting to ``/api/send/{inbox_id}``) or ``api_host``.
The SDK always speaks https to ``api_host`` (which may carry a port) and
ignores ``api_port``, so the port is the one in ``api_host``, else 443.
Knows nothing of OpenTelemetry.

- The message: ``Mail`` (subject, ``category``) or ``MailFromTemplate``
  (``template_uuid`` is ``email.template.id``); ``Address`` objects for the
  sender and recipients. A batch is ``BatchSendEmailParams(base, requests)``:
  each request is one message, with its own recipients and any of the
  base's fields overridden; the sender, subject, template and category are
  the batch's when every message has the same.
- ``email.provider.message_id``: the answer's ``message_ids`` (one per
  recipient; at most 20, comma-separated). A batch is answered 200 with one
  entry per request: an entry with ``success: false`` is a failed message
  (``error.type`` ``rejected``: its errors are free text) whose recipients
  count as not sent.
- Errors: ``APIError`` with the HTTP ``status`` (``AuthorizationError`` for
  401): ``error.type`` is that status. The SDK does not retry.
- Not traced: the inbound API's reply and forward, the sandbox's message
  management and every other API the client offers.

Usage::

    from opentelemetry.instrumentation.email.providers.mailtrap import MailtrapInstrumentor
    MailtrapInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import mailtrap.api.sending  # noqa: F401  (missing SDK: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    BatchAttempt,
    EmailAttempt,
    Operation,
    arg,
    item_count,
    shared,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import first_tag, http_error, server_of

_MODULE = "mailtrap.api.sending"
_OK_STATUS = 200  # the SDK returns the parsed body of a 200 only


# -- the request ---------------------------------------------------------------------------


def _server(api: Any) -> Tuple[Optional[str], Optional[int]]:
    # HttpClient builds https://{host}/{path}: the host may carry a port.
    return server_of(getattr(getattr(api, "_client", None), "_host", None))


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _field(message: Any, base: Any, name: str) -> Any:
    """A batch message's field: the request's own, else the base's."""
    value = getattr(message, name, None)
    return value if value is not None else getattr(base, name, None)


def _message_id(headers: Any) -> Optional[str]:
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "message-id":
                return _text(value)
    return None


def _describe_send(
    attempt: EmailAttempt, api: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    mail = arg(args, kwargs, 0, "mail")
    attempt.message = mail
    attempt.server_address, attempt.server_port = _server(api)
    attempt.sender = first_address(getattr(mail, "sender", None))
    attempt.to = addresses(getattr(mail, "to", None))
    attempt.cc = addresses(getattr(mail, "cc", None))
    attempt.bcc = addresses(getattr(mail, "bcc", None))
    attempt.subject = _text(getattr(mail, "subject", None))
    attempt.template_id = _text(getattr(mail, "template_uuid", None))
    attempt.category = first_tag(getattr(mail, "category", None))
    attempt.message_id = _message_id(getattr(mail, "headers", None))
    attachments = getattr(mail, "attachments", None)
    if isinstance(attachments, list):
        attempt.attachments = len(attachments)
    return attempt


def _describe_batch(
    attempt: BatchAttempt, api: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    params = arg(args, kwargs, 0, "mail")
    attempt.message = params
    attempt.server_address, attempt.server_port = _server(api)
    base = getattr(params, "base", None)
    requests = getattr(params, "requests", None)
    messages: List[Any] = list(requests) if isinstance(requests, list) else []
    attempt.set_messages(
        (
            addresses(getattr(m, "to", None)),
            addresses(getattr(m, "cc", None)),
            addresses(getattr(m, "bcc", None)),
        )
        for m in messages
    )
    attempt.sender = shared(first_address(_field(m, base, "sender")) for m in messages)
    attempt.subject = shared(_text(_field(m, base, "subject")) for m in messages)
    attempt.template_id = shared(_text(_field(m, base, "template_uuid")) for m in messages)
    attempt.category = shared(first_tag(_field(m, base, "category")) for m in messages)
    attachments = [_field(m, base, "attachments") for m in messages]
    if any(isinstance(a, list) for a in attachments):
        attempt.attachments = sum(item_count(a) for a in attachments)
    return attempt


# -- the outcome ---------------------------------------------------------------------------


def _ids(entry: Any) -> List[Any]:
    ids = getattr(entry, "message_ids", None)
    return list(ids) if isinstance(ids, list) else []


def _sent(attempt: EmailAttempt, result: Any) -> None:
    # SendingMailResponse(success, message_ids)
    success = getattr(result, "success", None)
    if not isinstance(success, bool):
        return
    attempt.http_status = _OK_STATUS
    attempt.set_provider_ids(_ids(result))
    if not success:
        attempt.failure = _errors.rejected_failure(None)


def _batch_sent(attempt: EmailAttempt, result: Any) -> None:
    # BatchSendResponse(success, responses[BatchSendResponseItem], errors),
    # one response per request, in order.
    success = getattr(result, "success", None)
    if not isinstance(success, bool):
        return
    assert isinstance(attempt, BatchAttempt)
    attempt.http_status = _OK_STATUS
    responses = getattr(result, "responses", None)
    entries: List[Any] = list(responses) if isinstance(responses, list) else []
    accepted: List[Any] = []
    for index, entry in enumerate(entries):
        if getattr(entry, "success", None) is False:
            # Its errors are sentences ("'to' address is required"): no token.
            attempt.message_failed(index, _errors.rejected_failure(None))
        else:
            accepted.extend(_ids(entry))
    attempt.set_provider_ids(accepted)
    if not success and not entries:
        attempt.failure = _errors.rejected_failure(None)


SEND = Operation(c.SYSTEM_MAILTRAP, c.OP_SEND, _describe_send, _sent, http_error)
SEND_BATCH = Operation(
    c.SYSTEM_MAILTRAP,
    c.OP_SEND_BATCH,
    _describe_batch,
    _batch_sent,
    http_error,
    attempt_type=BatchAttempt,
)

PATCHES = (
    Patch(_MODULE, "SendingApi.send", SEND),
    Patch(_MODULE, "SendingApi.batch_send", SEND_BATCH),
)


class MailtrapInstrumentor(LibraryInstrumentor):
    """Instruments Mailtrap's sending, bulk and sandbox sends, single and batch.

    >>> from opentelemetry.instrumentation.email.providers.mailtrap import MailtrapInstrumentor
    >>> MailtrapInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailtrap >= 2.11",)
