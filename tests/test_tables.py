"""Table tests for the two rules every adapter leans on: the queue id in a
final DATA reply (each MTA's format that ``_smtp.queue_id`` knows) and how an
exception becomes ``error.type`` and retryable (``_errors``)."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.text import MIMEText
from typing import List, Optional, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentelemetry.instrumentation.email._attempt import BatchAttempt, EmailAttempt, settle
from opentelemetry.instrumentation.email._errors import (
    Failure,
    exception_failure,
    http_failure,
    rejected_failure,
    smtp_failure,
)
from opentelemetry.instrumentation.email._mime import read_message_object, read_raw_message
from opentelemetry.instrumentation.email._smtp import (
    envelope_sender,
    queue_id,
    recipients_refused,
)
from opentelemetry.instrumentation.email.providers._http import (
    answered,
    http_error,
    status_failure,
)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        # Postfix, and aiosmtpd handlers written like it
        ("2.0.0 Ok: queued as 4Bx2Lk0Qz1z9", "4Bx2Lk0Qz1z9"),
        (b"2.0.0 Ok: queued as 4Bx2Lk0Qz1z9", "4Bx2Lk0Qz1z9"),
        ("Ok: queued as <ABC123>", "ABC123"),
        # Amazon SES SMTP interface
        (
            "Ok 0100018c2f3a4b5c-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-000000",
            "0100018c2f3a4b5c-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d-000000",
        ),
        ("2.0.0 Ok 0100018c2f3a4b5c-000000", "0100018c2f3a4b5c-000000"),
        # Exim
        ("OK id=1rAbCd-000Abc-Xy", "1rAbCd-000Abc-Xy"),
        # Sendmail
        ("2.0.0 3B1C2d5e012345 Message accepted for delivery", "3B1C2d5e012345"),
        # no id, or nothing at all
        ("2.0.0 Ok", None),
        ("OK", None),
        ("", None),
        (None, None),
        # an id longer than 128 characters is cut
        ("queued as " + "A" * 200, "A" * 128),
    ],
)
def test_queue_id_reads_each_mta_format(
    reply: Union[str, bytes, None], expected: Optional[str]
) -> None:
    assert queue_id(reply) == expected


class _SdkError(Exception):
    pass


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), Failure("timeout", True)),
        (socket.timeout(), Failure("timeout", True)),
        (asyncio.TimeoutError(), Failure("timeout", True)),
        (ConnectionRefusedError(errno.ECONNREFUSED, "no"), Failure("connection_refused", True)),
        (ConnectionResetError(), Failure("server_disconnected", True)),
        (BrokenPipeError(), Failure("server_disconnected", True)),
        (EOFError(), Failure("server_disconnected", True)),
        (ssl.SSLError(1, "bad handshake"), Failure("secure_connection_error", False)),
        (ssl.SSLCertVerificationError(1, "bad cert"), Failure("secure_connection_error", False)),
        (socket.gaierror(socket.EAI_NONAME, "unknown"), Failure("name_resolution_error", True)),
        # asyncio's "every address failed" OSError with the errnos only in its text
        (
            OSError("Multiple exceptions: [Errno 111] Connect call failed, [Errno 99] Cannot"),
            Failure("connection_refused", True),
        ),
        # an SDK's own exception wrapping the socket error
        (_chained(_SdkError(), ConnectionRefusedError()), Failure("connection_refused", True)),
        (_chained(_SdkError(), TimeoutError()), Failure("timeout", True)),
        # HTTP clients' own classes, by name
        (type("ReadTimeout", (Exception,), {})(), Failure("timeout", True)),
        (type("RemoteProtocolError", (Exception,), {})(), Failure("server_disconnected", True)),
        # a cancelled task: not a delivery failure
        (asyncio.CancelledError(), Failure("cancelled", True)),
        # anything else: its qualified class name, not retryable
        (ValueError("x"), Failure("ValueError", False)),
        (_SdkError("quotes alice@example.org"), Failure("tests.test_tables._SdkError", False)),
    ],
)
def test_exception_failure_classifies_each_kind(exc: BaseException, expected: Failure) -> None:
    assert exception_failure(exc) == expected


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (smtp_failure(451), Failure("451", True)),
        (smtp_failure(550), Failure("550", False)),
        (http_failure(400), Failure("400", False)),
        (http_failure(408), Failure("408", True)),
        (http_failure(429), Failure("429", True)),
        (http_failure(503), Failure("503", True)),
        (rejected_failure("MessageRejected"), Failure("MessageRejected", False)),
        (rejected_failure(406), Failure("406", False)),
        (rejected_failure("bounced to alice@example.org"), Failure("rejected", False)),
        (rejected_failure("x" * 41), Failure("rejected", False)),
        (rejected_failure(None), Failure("rejected", False)),
        (rejected_failure(True), Failure("rejected", False)),
    ],
)
def test_reply_and_status_failures(failure: Failure, expected: Failure) -> None:
    assert failure == expected


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([550, 550], Failure("550", False)),
        ([451, 452], Failure("451", True)),
        ([451, 550], Failure("451", False)),  # retryable only when every refusal is
        ([None], None),
    ],
)
def test_recipients_refused_rule(codes: list, expected: Optional[Failure]) -> None:
    attempt = EmailAttempt("smtp", "send")
    refused = [(f"r{i}@example.org", code) for i, code in enumerate(codes)]
    assert recipients_refused(attempt, refused) == expected
    assert attempt.rejected == refused
    assert attempt.smtp_code == (expected and int(expected.error_type))


def test_envelope_sender_prefers_sender_over_from() -> None:
    message = EmailMessage()
    message["From"] = "Shop <shop@shop.example>"
    assert envelope_sender(message) == "shop@shop.example"
    message["Sender"] = "bounces@shop.example"
    assert envelope_sender(message) == "bounces@shop.example"
    assert envelope_sender(EmailMessage()) is None


@pytest.mark.parametrize(
    ("failed", "count", "expected"),
    [
        # every message failed: the batch failed, with their common error.type
        ([rejected_failure(406), rejected_failure(406)], 2, Failure("406", False)),
        # different reasons: rejected
        ([rejected_failure(406), rejected_failure(300)], 2, Failure("rejected", False)),
        # retryable only when every message's failure is
        ([Failure("Throttled", True), Failure("Throttled", True)], 2, Failure("Throttled", True)),
        ([Failure("Throttled", True), Failure("Throttled", False)], 2, Failure("Throttled", False)),
        # some went out: not a failure of the call
        ([rejected_failure(406)], 2, None),
        ([], 1, None),
    ],
)
def test_one_rule_for_a_batch_that_failed_as_a_whole(
    failed: list, count: int, expected: Optional[Failure]
) -> None:
    attempt = BatchAttempt("postmark", "send_batch")
    attempt.set_messages([([f"m{i}@example.org"], [], []) for i in range(count)])
    for index, failure in enumerate(failed):
        attempt.message_failed(index, failure)
    settle(attempt)
    assert attempt.failure == expected


def test_a_call_failed_before_settling_keeps_its_own_failure() -> None:
    attempt = BatchAttempt("mailjet", "send_batch")
    attempt.set_messages([(["a@example.org"], [], [])])
    attempt.failure = http_failure(400)
    attempt.message_failed(0, rejected_failure("mj-0013"))
    settle(attempt)
    assert attempt.failure == Failure("400", False)


@pytest.mark.parametrize(("messages", "count"), [(0, 1), (1, 1), (3, 3)])
def test_a_batch_counts_its_messages_and_at_least_one(messages: int, count: int) -> None:
    attempt = BatchAttempt("mailersend", "send_batch")
    attempt.set_messages([([f"m{i}@example.org"], [], []) for i in range(messages)])
    assert attempt.message_count == count


def test_http_helpers_record_the_status_only_where_their_name_says() -> None:
    class Answered(Exception):
        status_code = 429

    attempt = EmailAttempt("sendgrid", "send")
    assert status_failure(Answered(), 429) == Failure("429", True)
    assert attempt.http_status is None  # status_failure only classifies
    assert http_error(attempt, Answered()) == Failure("429", True)
    assert attempt.http_status == 429  # the on_error records what it read
    seen = []
    read = answered(202, lambda attempt, result: seen.append(result))
    for result, status in (({"id": "x"}, 202), ([{"id": "x"}], 202), (None, None), ("x", None)):
        attempt = EmailAttempt("resend", "send")
        read(attempt, result)
        assert attempt.http_status == status
    assert seen == [{"id": "x"}, [{"id": "x"}], None, "x"]


@pytest.mark.parametrize(
    ("raw", "to", "cc", "attachments"),
    [
        # CRLF throughout, a header in the body is not a header
        (b"To: a@x.org\r\nCc: c@y.org\r\n\r\nTo: body@z.org\r\n", ["a@x.org"], ["c@y.org"], 0),
        # LF headers with a CRLF body
        (b"To: a@x.org\nCC: c@y.org\n\r\nTo: body@z.org", ["a@x.org"], ["c@y.org"], 0),
        # a folded header, header names in any case, no body at all
        (b"to: A <a@x.org>,\r\n B <b@x.org>\r\nSubject: s", ["a@x.org", "b@x.org"], [], 0),
        # attachment parts, whatever the case of the header's initials, and
        # named parts without a disposition; not the body, not an inline part
        (
            b"To: a@x.org\r\nSubject: name=x\r\nContent-Type: multipart/mixed; boundary=b\r\n"
            b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee name=x\r\n"
            b"--b\r\nContent-Disposition: attachment\r\n\r\nx\r\n"
            b"--b\r\ncontent-disposition: ATTACHMENT; filename=a.pdf\r\n\r\nx\r\n"
            b'--b\r\nContent-Type: application/pdf;\r\n name="b.pdf"\r\n\r\nx\r\n'
            b"--b\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=l.png\r\n"
            b"\r\nx\r\n--b--\r\n",
            ["a@x.org"],
            [],
            3,
        ),
        # a bare word in an address header is a display name, not an address
        (b"To: Alice\r\nCc: root, c@y.org\r\n\r\nx", [], ["c@y.org"], 0),
        # a message that is one attachment, and one that is not
        (b"To: a@x.org\nContent-Disposition: attachment\n\nx", ["a@x.org"], [], 1),
        (b"To: a@x.org\nSubject: my name=x\n\nfilename=y", ["a@x.org"], [], 0),
        # the message's own Content-Type, folded, its name on the second line
        (
            b'To: a@x.org\r\nContent-Type: application/pdf;\r\n name="b.pdf"\r\n\r\nx',
            ["a@x.org"],
            [],
            1,
        ),
        # the first Content-Type and Content-Disposition are the message's
        (
            b"To: a@x.org\nContent-Type: text/plain\nContent-Type: application/pdf; name=x\n"
            b"Content-Disposition: inline\nContent-Disposition: attachment\n\nx",
            ["a@x.org"],
            [],
            0,
        ),
    ],
)
def test_a_raw_message_is_read_from_its_header_block(
    raw: bytes, to: list, cc: list, attachments: int
) -> None:
    attempt = EmailAttempt("smtp", "send")
    read_raw_message(attempt, raw)
    assert (attempt.to, attempt.cc, attempt.attachments) == (to, cc, attachments)


def test_the_from_header_is_read_only_without_an_envelope_sender() -> None:
    raw = b"From: Shop <orders@shop.example>\r\nMessage-ID: <1@shop.example>\r\n\r\nx"
    given, found = EmailAttempt("smtp", "send"), EmailAttempt("smtp", "send")
    given.sender = "bounces@shop.example"
    read_raw_message(given, raw)
    read_raw_message(found, raw)
    assert (given.sender, found.sender) == ("bounces@shop.example", "orders@shop.example")
    assert given.message_id == found.message_id == "<1@shop.example>"


_PART_KINDS = st.sampled_from(["attachment", "named", "inline_named", "plain", "nested"])


def _mixed(message: EmailMessage) -> None:
    if message.get_content_subtype() != "mixed":
        message.make_mixed()


def _build(kinds: List[str]) -> EmailMessage:
    message = EmailMessage()
    message["To"] = "a@x.org"
    message.set_content("the body")
    for i, kind in enumerate(kinds):
        if kind == "attachment":
            message.add_attachment(
                b"x" * i, maintype="application", subtype="pdf", filename=f"{i}.pdf"
            )
        elif kind == "named":  # yagmail's shape: a name parameter, no disposition
            part = MIMEApplication(b"x" * i, Name=f"{i}.bin")
            del part["Content-Disposition"]
            _mixed(message)
            message.attach(part)
        elif kind == "inline_named":
            message.add_attachment(
                b"x", maintype="image", subtype="png", filename=f"{i}.png", disposition="inline"
            )
        elif kind == "plain":  # a second text part, no name: part of the body
            _mixed(message)
            message.attach(MIMEText("more text"))
        else:
            inner = EmailMessage()
            inner.set_content("inner")
            inner.add_attachment(b"y", maintype="application", subtype="zip", filename="in.zip")
            _mixed(message)
            message.attach(inner)
    return message


@given(st.lists(_PART_KINDS, max_size=6))
@settings(max_examples=60, deadline=None)
def test_raw_and_parsed_messages_count_the_same_attachments(kinds: List[str]) -> None:
    message = _build(kinds)
    parsed, raw = EmailAttempt("smtp", "send"), EmailAttempt("smtp", "send")
    read_message_object(parsed, message)
    read_raw_message(raw, message.as_bytes())
    expected = sum(k in ("attachment", "named", "nested") for k in kinds)
    assert (parsed.attachments, raw.attachments) == (expected, expected)
