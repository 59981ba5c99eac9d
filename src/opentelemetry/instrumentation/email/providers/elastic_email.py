"""Adapter for Elastic Email's Python SDK (``elasticemail``, import
``ElasticEmail``), API v4.

``EmailsApi(api_client)`` sends in three ways, each in three forms (the
plain method returns the parsed body, ``_with_http_info`` an
``ApiResponse``, ``_without_preload_content`` the unread urllib3 response);
the forms do not call one another, so each is wrapped and each call is one
span:

- ``emails_transactional_post(EmailTransactionalMessageData)``: one message
  to ``Recipients.To`` / ``CC`` / ``BCC``, a ``send elastic_email`` span.
- ``emails_post(EmailMessageData)``: "bulk merge email", one message per
  entry of ``Recipients`` (each gets its own copy, merged with its
  ``Fields``): ``send_batch elastic_email`` with one message per recipient
  (one recipient: ``send``).
- ``emails_mergefile_post(MergeEmailPayload)``: the same, to the rows of a
  CSV file sent along (``MergeFile.BinaryContent``, base64): the API takes
  the first column of each row after the header as the address, and so
  does this adapter, to count the messages and their recipients.

The payload is read as the SDK model or as the dict the SDK also accepts
(``pydantic.validate_call`` converts it inside the call), by field name or
JSON alias. ``email.template.id`` is ``Content.TemplateName``;
``email.category`` is ``Options.ChannelName``, the name Elastic Email groups
sends by in its statistics (the API has no tags). ``email.provider.message_id``
is the answer's ``MessageID``; for a batch the ``TransactionID``, which names
all its messages (``GET /emails/{transactionid}/status``). The answer has no
per-recipient outcome.

Errors raise ``ApiException`` (or its subclasses) with the HTTP status in
``.status``: that status is ``error.type``, retryable for 408, 429 and 5xx.
``_without_preload_content`` never raises for a status: an answer of 400 or
more fails the span all the same, and its body is left unread for the app
(so it has no provider id). Network errors are urllib3's, which retries
refused connections (three times by default, ``Configuration.retries``)
inside the span.

Usage::

    from opentelemetry.instrumentation.email.providers.elastic_email import (
        ElasticEmailInstrumentor,
    )
    ElasticEmailInstrumentor().instrument()
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Mapping
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ElasticEmail.api_response import ApiResponse
from ElasticEmail.models.email_send import EmailSend

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    BatchAttempt,
    EmailAttempt,
    Operation,
    arg,
    item_count,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import (
    http_error,
    response_status,
    server_of,
)

_MODULE = "ElasticEmail.api.emails_api"
_OK_STATUS = 200  # the only success the SDK parses a body for


# -- the request -----------------------------------------------------------------------------


def _server(instance: Any) -> Tuple[Optional[str], Optional[int]]:
    configuration = getattr(getattr(instance, "api_client", None), "configuration", None)
    return server_of(getattr(configuration, "host", None))


def _field(value: Any, name: str, alias: str) -> Any:
    """A field of an SDK model, or of the dict standing for it (by its JSON
    alias, as the API spells it, or by the model's field name)."""
    if isinstance(value, Mapping):
        found = value.get(alias)
        return value.get(name) if found is None else found
    return getattr(value, name, None)


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _header(headers: Any, wanted: str) -> Optional[str]:
    if not isinstance(headers, Mapping):
        return None
    for name, value in headers.items():
        if isinstance(name, str) and name.lower() == wanted:
            return _text(value)
    return None


def _describe_content(attempt: EmailAttempt, payload: Any) -> None:
    """What the message says, the same for every message of a bulk send."""
    content = _field(payload, "content", "Content")
    attempt.sender = first_address(_field(content, "var_from", "From"))
    attempt.subject = _text(_field(content, "subject", "Subject"))
    attempt.template_id = _text(_field(content, "template_name", "TemplateName"))
    attempt.message_id = _header(_field(content, "headers", "Headers"), "message-id")
    attached = _field(content, "attachments", "Attachments")
    uploaded = _field(content, "attach_files", "AttachFiles")  # files uploaded earlier
    if isinstance(attached, (list, tuple)) or isinstance(uploaded, (list, tuple)):
        attempt.attachments = item_count(attached) + item_count(uploaded)
    options = _field(payload, "options", "Options")
    attempt.category = _text(_field(options, "channel_name", "ChannelName"))


def _describe_transactional(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    payload = arg(args, kwargs, 0, "email_transactional_message_data")
    attempt.message = payload
    attempt.server_address, attempt.server_port = _server(instance)
    recipients = _field(payload, "recipients", "Recipients")
    attempt.to = addresses(_field(recipients, "to", "To"))
    attempt.cc = addresses(_field(recipients, "cc", "CC"))
    attempt.bcc = addresses(_field(recipients, "bcc", "BCC"))
    _describe_content(attempt, payload)
    return attempt


def _batch(attempt: BatchAttempt, recipients: Iterable[List[str]]) -> None:
    """One message per recipient: each gets a copy of its own."""
    attempt.set_messages((found, (), ()) for found in recipients)
    if attempt.message_count > 1:
        attempt.operation = c.OP_SEND_BATCH


def _describe_bulk(
    attempt: BatchAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    payload = arg(args, kwargs, 0, "email_message_data")
    attempt.message = payload
    attempt.server_address, attempt.server_port = _server(instance)
    _batch(attempt, (addresses(r) for r in _list(_field(payload, "recipients", "Recipients"))))
    _describe_content(attempt, payload)
    return attempt


def _merge_file_rows(merge_file: Any) -> List[List[str]]:
    """The address in each row of a merge file: its first column, the header
    row skipped (as the API reads it). The SDK sends the content as the
    base64 text the app gave; raw bytes it cannot serialise (it raises
    ``TypeError`` before any request), but the span still says what was
    meant. Rows without an address are not messages."""
    content = _field(merge_file, "binary_content", "BinaryContent")
    if isinstance(content, str):
        try:
            content = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            return []
    if not isinstance(content, (bytes, bytearray)):
        return []
    rows = csv.reader(io.StringIO(bytes(content).decode("utf-8-sig", errors="replace")))
    next(rows, None)
    return [found for found in (addresses(row[0]) for row in rows if row) if found]


def _describe_merge_file(
    attempt: BatchAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    payload = arg(args, kwargs, 0, "merge_email_payload")
    attempt.message = payload
    attempt.server_address, attempt.server_port = _server(instance)
    _batch(attempt, _merge_file_rows(_field(payload, "merge_file", "MergeFile")))
    _describe_content(attempt, payload)
    return attempt


# -- the outcome -----------------------------------------------------------------------------


def _read_ids(attempt: EmailAttempt, answer: Any) -> None:
    if not isinstance(answer, EmailSend):
        return
    message_id, transaction_id = _text(answer.message_id), _text(answer.transaction_id)
    if attempt.operation == c.OP_SEND_BATCH:
        attempt.provider_message_id = transaction_id or message_id
    else:
        attempt.provider_message_id = message_id or transaction_id


def _sent(attempt: EmailAttempt, result: Any) -> None:
    if isinstance(result, EmailSend):  # the plain method: the body of a 200
        attempt.http_status = _OK_STATUS
        _read_ids(attempt, result)
    elif isinstance(result, ApiResponse):  # _with_http_info
        attempt.http_status = response_status(result)
        _read_ids(attempt, result.data)
    else:
        # _without_preload_content: the unread urllib3 response. Reading its
        # ``data`` would consume the body the app has yet to read.
        status = response_status(result)
        attempt.http_status = status
        if status is not None and status >= 400:
            attempt.failure = _errors.http_failure(status)


TRANSACTIONAL = Operation(
    c.SYSTEM_ELASTIC_EMAIL, c.OP_SEND, _describe_transactional, _sent, http_error
)
BULK = Operation(
    c.SYSTEM_ELASTIC_EMAIL,
    c.OP_SEND,
    _describe_bulk,
    _sent,
    http_error,
    attempt_type=BatchAttempt,
)
MERGE_FILE = Operation(
    c.SYSTEM_ELASTIC_EMAIL,
    c.OP_SEND,
    _describe_merge_file,
    _sent,
    http_error,
    attempt_type=BatchAttempt,
)

_FORMS = ("", "_with_http_info", "_without_preload_content")

PATCHES = tuple(
    Patch(_MODULE, f"EmailsApi.{method}{form}", operation)
    for method, operation in (
        ("emails_transactional_post", TRANSACTIONAL),
        ("emails_post", BULK),
        ("emails_mergefile_post", MERGE_FILE),
    )
    for form in _FORMS
)


class ElasticEmailInstrumentor(LibraryInstrumentor):
    """Instruments Elastic Email's transactional, bulk and merge-file sends (``EmailsApi``).

    >>> from opentelemetry.instrumentation.email.providers.elastic_email import (
    ...     ElasticEmailInstrumentor,
    ... )
    >>> ElasticEmailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("elasticemail >= 4.4",)
