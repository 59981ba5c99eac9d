"""Adapter for Brevo's Python SDK 5.x (``brevo-python``, import ``brevo``).

``Brevo(...).transactional_emails.send_transac_email(...)`` and its
``AsyncBrevo`` form, and the same calls through ``with_raw_response``: all of
them run the raw client's ``send_transac_email``, which is what is wrapped
(it sees the HTTP status; the public method only unwraps ``.data``). Knows
nothing of OpenTelemetry.

- One ``send brevo`` span per call; a call with more than one
  ``message_versions`` entry sends one message per version and gets one
  ``send_batch brevo`` span (``message_count`` = versions).
- ``email.provider.message_id``: the response's ``messageId``; for a batch,
  the ``messageIds`` joined with ``,`` (at most 20).
- ``email.category``: the first of the call's ``tags`` (shared by every
  version).
- Arguments are SDK model objects or plain dicts, read either way.
- The SDK retries 408, 409, 429, 5xx and refused connections (twice by
  default, ``max_retries``): the span covers the whole call, retries
  included, and reports the final outcome.
- Delivery propagation, only with ``propagate=headers`` (the header
  travels with the message and recipients can see it): the send span's
  traceparent and the send time as one JSON object string,
  ``{"otel_traceparent": …, "otel_sent_at": …}`` (ASCII; django-anymail
  writes its metadata there the same way), in the ``X-Mailin-custom``
  header, which Brevo's webhooks echo. Never when the app set that header
  (a message version's own header wins over ours for its recipients);
  never in ``tags`` (analytics grouping).

Usage::

    from opentelemetry.instrumentation.email.providers.brevo import BrevoInstrumentor
    BrevoInstrumentor().instrument()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Dict, Optional, Sequence, Tuple

from brevo.core.api_error import ApiError

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    BatchAttempt,
    EmailAttempt,
    Operation,
    Propagation,
    bare_id,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import (
    first_tag,
    http_error,
    response_status,
    server_of,
    status_failure,
)

_MODULE = "brevo.transactional_emails.raw_client"


def _model_field(value: Any, name: str, alias: Optional[str] = None) -> Any:
    """A field of an SDK model or of the dict that stands for it (by its
    Python name or its JSON alias). ``...`` is the SDK's "not given"."""
    if isinstance(value, dict):
        found = value.get(name)
        if found is None and alias:
            found = value.get(alias)
    else:
        found = getattr(value, name, None)
    return None if found is ... else found


def _given(kwargs: Dict[str, Any], name: str) -> Any:
    value = kwargs.get(name)
    return None if value is ... else value


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _server(instance: Any) -> Tuple[Optional[str], Optional[int]]:
    wrapper = getattr(instance, "_client_wrapper", None)
    get_base_url = getattr(wrapper, "get_base_url", None)
    return server_of(get_base_url() if callable(get_base_url) else None)


def _or(value: Any, default: Any) -> Any:
    return value if value is not None else default


def _describe(
    attempt: BatchAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    versions = _list(_given(kwargs, "message_versions"))
    if len(versions) > 1:
        attempt.operation = c.OP_SEND_BATCH
    attempt.server_address, attempt.server_port = _server(instance)
    attempt.sender = first_address(_given(kwargs, "sender"))
    cc, bcc = _given(kwargs, "cc"), _given(kwargs, "bcc")
    if versions:
        # Each version is a message of its own: its to, and its cc / bcc
        # where it gives them, the call's otherwise (the call's to is ignored).
        attempt.set_messages(
            (
                addresses(_model_field(version, "to")),
                addresses(_or(_model_field(version, "cc"), cc)),
                addresses(_or(_model_field(version, "bcc"), bcc)),
            )
            for version in versions
        )
    else:
        attempt.set_messages([(addresses(_given(kwargs, "to")), addresses(cc), addresses(bcc))])
    subject = _given(kwargs, "subject")
    if subject is None and versions:
        subject = _model_field(versions[0], "subject")
    if isinstance(subject, str):
        attempt.subject = subject
    template = _given(kwargs, "template_id")
    if isinstance(template, (int, str)) and not isinstance(template, bool):
        attempt.template_id = str(template)
    # The call's tags: every version of a batch has them.
    attempt.category = first_tag(_given(kwargs, "tags"))
    attachments = _given(kwargs, "attachment")
    if isinstance(attachments, (list, tuple)):
        attempt.attachments = len(attachments)
    return attempt


def _on_result(attempt: EmailAttempt, result: Any) -> None:
    attempt.http_status = response_status(result)
    data = getattr(result, "data", None)
    message_id = _model_field(data, "message_id", "messageId")
    if isinstance(message_id, str) and message_id:
        attempt.provider_message_id = bare_id(message_id) or None
        return
    attempt.set_provider_ids(_list(_model_field(data, "message_ids", "messageIds")))


def _on_error(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    status = response_status(exc) if isinstance(exc, ApiError) else None
    if status is not None and status < 300:
        # A 2xx the SDK could not parse (ParsingError): answered, but not an
        # HTTP failure.
        attempt.http_status = status
        return status_failure(exc, None)
    return http_error(attempt, exc, status)


# -- propagation: the X-Mailin-custom header, echoed in every webhook -------------------------

_CUSTOM_HEADER = "X-Mailin-custom"
# Brevo's limit on the header is unconfirmed; ours is about 100 bytes.
_MAX_CUSTOM = 1000
Args = Tuple[Any, ...]


def _inject(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    if not propagation.headers:
        return None  # a header recipients can see: only when the user allowed that
    headers = _given(kwargs, "headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, Mapping):
        return None
    wanted = _CUSTOM_HEADER.lower()
    if any(isinstance(name, str) and name.lower() == wanted for name in headers):
        return None  # the app's own custom data
    value = json.dumps(propagation.fields(), separators=(",", ":"))
    if not value.isascii() or len(value) > _MAX_CUSTOM:
        return None  # non-ASCII makes Brevo bounce the message
    copy = dict(kwargs)
    copy["headers"] = {**headers, _CUSTOM_HEADER: value}
    return args, copy


SEND = Operation(
    c.SYSTEM_BREVO,
    c.OP_SEND,
    _describe,
    _on_result,
    _on_error,
    attempt_type=BatchAttempt,
    inject=_inject,
    inject_needs_headers=True,
)

PATCHES = (
    Patch(_MODULE, "RawTransactionalEmailsClient.send_transac_email", SEND),
    Patch(_MODULE, "AsyncRawTransactionalEmailsClient.send_transac_email", SEND, is_async=True),
)


class BrevoInstrumentor(LibraryInstrumentor):
    """Instruments ``brevo`` 5.x transactional email sends, sync and async.

    >>> from opentelemetry.instrumentation.email.providers.brevo import BrevoInstrumentor
    >>> BrevoInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("brevo-python >= 5",)
