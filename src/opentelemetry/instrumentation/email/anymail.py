"""Adapter for django-anymail, the Django email backends for ESP APIs.

anymail calls each ESP's HTTP API itself (with ``requests``; Amazon SES
through boto3), so each request it makes is a CLIENT ``send {email.system}``
span, like a provider SDK's: ``email.system`` is the ESP (``sendgrid``,
``postmark``, ``mailgun``, ``ses``, ... ``brevo`` also for anymail's
``SendinBlue`` name; for ESPs the contract does not list, anymail's ESP name
in lower case with ``_`` for spaces: ``mailtrap``, ``postal``,
``unisender_go``). Django's ``send_messages django`` span (``django_mail``)
is its parent, and counts no message this span saw.

What is wrapped, and why: ``post_to_esp(payload, message)`` of
``AnymailRequestsBackend`` and of the Amazon SES backend, and of every
subclass with its own (also those defined after ``instrument()``). It is the
ESP request and nothing else: it runs after anymail's ``pre_send`` signal,
which may change the recipients or cancel the send (a cancelled message, or
one without recipients, makes no request and gets no span), and before the
``post_send`` signal, whose receivers' errors are the application's, not the
send's. ``_send``, which holds all of these, would start the span before the
message is final and count a cancelled one as sent.

The outcome: anymail normalises each ESP's answer into per-recipient
statuses (``message.anymail_status``) with ``parse_recipient_status``, only
after ``post_to_esp`` returned; the span's ``on_result`` asks the backend for
the same statuses from the same answer (every anymail backend's
``parse_recipient_status`` only reads the response and payload). ``rejected``
and ``invalid`` recipients are refused recipients (no reply code);
``queued``, ``sent`` and ``scheduled`` are accepted; ``failed`` and
``unknown`` are counted neither way. No recipient accepted (anymail raises
``AnymailRecipientsRefused`` when all were refused): the send failed,
``rejected``. ``email.provider.message_id`` is the ESP's id from the
statuses (several ids, one per recipient of a batch send: the first 20,
comma-separated). An HTTP error status (``AnymailRequestsAPIError``, or the
422 that Postmark's backend reads itself) is ``error.type``; network errors
are classified by the core.

Amazon SES: anymail sends with boto3, which the ``ses`` adapter traces too.
The SES backend's request is its own operation of system ``ses``, so the
core's nested-call rule makes boto3's request beneath it call through: one
``send ses`` span, not two.

Not traced: backends on ``AnymailBaseBackend`` that do not go through these
two classes (anymail's ``test`` and ``console`` backends, which send
nothing: Django's layer counts their messages, as for locmem).

Usage::

    from opentelemetry.instrumentation.email.anymail import AnymailInstrumentor
    AnymailInstrumentor().instrument()
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple

import anymail.backends.base_requests  # noqa: F401  (missing anymail: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation, arg, item_count
from opentelemetry.instrumentation.email._errors import (
    Failure,
    exception_failure,
    http_failure,
    rejected_failure,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import (
    http_status_in_chain,
    response_status,
    server_of,
)

# anymail's ESP names (``esp_name``) whose email.system the contract fixes;
# any other is spelled by _system's rule.
_SYSTEMS = {
    "amazon ses": c.SYSTEM_SES,
    "sendinblue": c.SYSTEM_BREVO,
    "scaleway": "scaleway_tem",  # Scaleway's Transactional Email (TEM)
}

# The system of the operation for every ESP but SES. It only keys the core's
# nested-call rule (an override of post_to_esp calling its parent's is one
# span); each attempt carries its ESP's system.
_ANY_ESP = "anymail"

_ACCEPTED = frozenset({"queued", "sent", "scheduled"})
_REFUSED = frozenset({"rejected", "invalid"})
_FAILED = "failed"

# SESv2 error codes botocore retries as throttling, and bulk entry statuses a
# later retry can turn into a success (as the ses adapter classifies them).
_SES_THROTTLING = frozenset({"TooManyRequestsException", "LimitExceededException"})
_SES_TRANSIENT = frozenset(
    {"TRANSIENT_FAILURE", "ACCOUNT_THROTTLED", "ACCOUNT_DAILY_QUOTA_EXCEEDED"}
)


@functools.lru_cache(maxsize=64)
def esp_system(esp_name: str) -> str:
    """``email.system`` for anymail's ESP name: ``SendGrid`` -> ``sendgrid``,
    ``Unisender Go`` -> ``unisender_go``, ``Amazon SES`` -> ``ses``."""
    name = re.sub(r"\s+", " ", esp_name.strip().lower())
    return _SYSTEMS.get(name, name.replace(" ", "_"))


class _EspAttempt(EmailAttempt):
    """The attempt, and what anymail needs to read the ESP's answer."""

    __slots__ = ("esp_backend", "esp_message", "esp_payload")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.esp_backend: Any = None
        self.esp_payload: Any = None
        self.esp_message: Any = None


# -- the request -----------------------------------------------------------------------


def _default(backend: Any, name: str) -> Any:
    defaults = getattr(backend, "send_defaults", None)
    return defaults.get(name) if isinstance(defaults, dict) else None


def _template(message: Any, backend: Any) -> Optional[str]:
    # anymail's attributes are UNSET (a marker object) when not given.
    for value in (getattr(message, "template_id", None), _default(backend, "template_id")):
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def _message_id(message: Any) -> Optional[str]:
    headers = getattr(message, "extra_headers", None)
    if isinstance(headers, dict):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "message-id" and isinstance(value, str):
                return value
    return None


def _first_tag(message: Any, backend: Any) -> Optional[str]:
    for tags in (_default(backend, "tags"), getattr(message, "tags", None)):
        if isinstance(tags, (list, tuple)) and tags and isinstance(tags[0], str):
            return tags[0]
    return None


def _read_message(attempt: _EspAttempt, backend: Any, message: Any) -> None:
    """Who and what, from the Django message as anymail sends it: its
    recipients and tags after the ``SEND_DEFAULTS`` ones (anymail puts those
    first)."""
    attempt.message = message
    attempt.category = _first_tag(message, backend)
    attempt.sender = first_address(getattr(message, "from_email", None))
    attempt.to, attempt.cc, attempt.bcc = (
        [*addresses(_default(backend, field)), *addresses(getattr(message, field, None))]
        for field in ("to", "cc", "bcc")
    )
    subject = getattr(message, "subject", None)
    attempt.subject = subject if isinstance(subject, str) else None
    attempt.attachments = item_count(getattr(message, "attachments", None))
    attempt.message_id = _message_id(message)
    attempt.template_id = _template(message, backend)


def _read_call(
    attempt: EmailAttempt, backend: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    """The request's who and what, and the objects its answer is read with."""
    assert isinstance(attempt, _EspAttempt)
    attempt.esp_backend = backend
    attempt.esp_payload = arg(args, kwargs, 0, "payload")
    attempt.esp_message = message = arg(args, kwargs, 1, "message")
    _read_message(attempt, backend, message)
    return attempt


def _describe(
    attempt: EmailAttempt, backend: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    """``AnymailRequestsBackend.post_to_esp(payload, message)``: the ESP from
    the backend's ``esp_name``, the API host from its ``api_url`` (every
    endpoint is relative to it)."""
    esp_name = getattr(backend, "esp_name", None)
    if not isinstance(esp_name, str):
        return None
    attempt.system = esp_system(esp_name)
    attempt.server_address, attempt.server_port = server_of(getattr(backend, "api_url", None))
    return _read_call(attempt, backend, args, kwargs)


def _describe_ses(
    attempt: EmailAttempt, backend: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    """The SES backend's ``post_to_esp``: the host its boto3 client sends to."""
    meta = getattr(getattr(backend, "client", None), "meta", None)
    attempt.server_address, attempt.server_port = server_of(getattr(meta, "endpoint_url", None))
    return _read_call(attempt, backend, args, kwargs)


# -- the outcome -----------------------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _status(response: Any) -> Optional[int]:
    """The HTTP status of an answer: a ``requests.Response``, or boto3's
    parsed answer (success or ``ClientError.response``)."""
    status = response_status(response)
    if status is None:
        status = _get(response, "ResponseMetadata", "HTTPStatusCode")
        if not isinstance(status, int) or isinstance(status, bool):
            return None
    return status


def _http(status: int, response: Any) -> Failure:
    failure = http_failure(status)
    if not failure.retryable and _get(response, "Error", "Code") in _SES_THROTTLING:
        return Failure(failure.error_type, True)
    return failure


def _on_error(attempt: EmailAttempt, exc: BaseException) -> Failure:
    """``AnymailRequestsAPIError`` carries the status (``status_code``, its
    ``response``); the SES backend's ``AnymailAPIError`` boto3's parsed
    error answer. A network error (anymail raises it as both its own and
    ``requests``' or botocore's class, from the original) is the core's to
    classify, as is a status below 400 (Mailgun's 200 from a wrong URL)."""
    response = getattr(exc, "response", None)
    status = http_status_in_chain(exc) or _status(response)
    if status is not None and status >= 400:
        attempt.http_status = status
        return _http(status, response)
    return exception_failure(exc)


def _unread(attempt: EmailAttempt, exc: Exception, response: Any) -> Failure:
    """anymail will raise ``exc`` from this answer: an error status it reads
    itself (Postmark's 422), else a 2xx it takes for a refusal (every SES
    bulk entry refused, one status for all) or cannot read."""
    status = attempt.http_status
    if status is not None and status >= 400:
        return _http(status, response)
    entries = _get(response, "BulkEmailEntryResults")
    code = _get(entries[0], "Status") if isinstance(entries, list) and entries else None
    failure = rejected_failure(code)
    return Failure(failure.error_type, True) if code in _SES_TRANSIENT else failure


def _read_statuses(attempt: EmailAttempt, statuses: Mapping[Any, Any]) -> None:
    spelled = {address.lower(): address for address in attempt.envelope()}
    ids: List[Any] = []
    accepted = unknown = 0
    for address, recipient in statuses.items():
        status = getattr(recipient, "status", None)
        message_id = getattr(recipient, "message_id", None)
        if message_id is not None and message_id not in ids:
            ids.append(message_id)
        # The address as the app wrote it (Postmark reports refusals in lower case).
        address = spelled.get(str(address).lower(), str(address))
        if status in _ACCEPTED:
            accepted += 1
        elif status in _REFUSED:
            attempt.rejected.append((address, None))
        else:  # failed, unknown: counted neither accepted nor refused
            attempt.not_sent.append(address)
            if status != _FAILED:
                unknown += 1
    attempt.set_provider_ids(ids)
    if statuses and not accepted and not unknown:
        attempt.failure = rejected_failure(None)


def _on_result(attempt: EmailAttempt, response: Any) -> None:
    assert isinstance(attempt, _EspAttempt)
    status = attempt.http_status = _status(response)
    try:
        statuses = attempt.esp_backend.parse_recipient_status(
            response, attempt.esp_payload, attempt.esp_message
        )
    except Exception as exc:
        attempt.failure = _unread(attempt, exc, response)
        return
    if isinstance(statuses, Mapping):
        _read_statuses(attempt, statuses)
    if status is not None and status >= 400:
        attempt.failure = _http(status, response)


def _on_ses_result(attempt: EmailAttempt, response: Any) -> None:
    """Also the size: the SES backend hands boto3 the MIME bytes it built
    (inside ``post_to_esp``) for a message without a template."""
    assert isinstance(attempt, _EspAttempt)
    raw = _get(getattr(attempt.esp_payload, "params", None), "Content", "Raw", "Data")
    if isinstance(raw, bytes):
        attempt.size = len(raw)
    _on_result(attempt, response)


SEND = Operation(_ANY_ESP, c.OP_SEND, _describe, _on_result, _on_error, attempt_type=_EspAttempt)
# Same (system, operation) as the ses adapter's request: boto3's call inside
# it is not a second span.
SEND_SES = Operation(
    c.SYSTEM_SES, c.OP_SEND, _describe_ses, _on_ses_result, _on_error, attempt_type=_EspAttempt
)

PATCHES = (
    Patch(
        "anymail.backends.base_requests",
        "AnymailRequestsBackend.post_to_esp",
        SEND,
        subclasses=True,
    ),
    # Importable only with boto3 installed (anymail's amazon-ses extra).
    Patch(
        "anymail.backends.amazon_ses",
        "EmailBackend.post_to_esp",
        SEND_SES,
        optional=True,
        subclasses=True,
    ),
)


class AnymailInstrumentor(LibraryInstrumentor):
    """Instruments every django-anymail ESP backend's API request.

    >>> from opentelemetry.instrumentation.email.anymail import AnymailInstrumentor
    >>> AnymailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("django-anymail >= 13.0",)
