"""The neutral record of one attempt, and how an adapter describes an
operation. Nothing here knows OpenTelemetry or any mail library: adapters
fill an :class:`EmailAttempt`, the telemetry core reads it."""

from __future__ import annotations

from typing import (
    Any,
    Callable,
    Collection,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from opentelemetry.instrumentation.email._conventions import (
    ERROR_REJECTED,
    FIXED_ERROR_TYPES,
    MAX_ADDRESSES_PER_ATTRIBUTE,
    OP_SEND,
    OP_SEND_BATCH,
    PROPAGATION_SENT_AT,
    PROPAGATION_SENT_AT_HEADER,
    PROPAGATION_TRACEPARENT,
    PROPAGATION_TRACEPARENT_HEADER,
)
from opentelemetry.instrumentation.email._errors import (
    Failure,
    exception_failure,
)
from opentelemetry.instrumentation.email._privacy import (
    MAX_ID_SEARCH,
    Words,
    address_words,
    holds_a_word,
)

# A refused recipient: its address (None where only a count is known) and
# the reply code, when there is one.
Rejected = Tuple[Optional[str], Optional[int]]


class EmailAttempt:
    """Who, what, where and how it went, for one library call.

    Request hooks receive it before the call, response hooks after; addresses
    in it are raw (the privacy policy is applied when attributes are built),
    so hooks must not copy them into telemetry.

    The outcome fields, and what the core does with each:

    - ``failure``: the whole call failed (it raised, or the library reported
      a failure without raising). The span is ERROR with its ``error.type``;
      every message counts as failed; no recipient is counted accepted.
    - ``rejected``: recipients refused while the message still went out
      (with ``failure`` unset), or the refusals that made it fail (with
      ``failure`` set: then they are span events only). Counted as rejected
      recipients either way.
    - ``failed_messages``: messages of a batch the provider reported failed,
      one :class:`Failure` each; each counts as a failed message and the rest
      as sent. When every message failed, :func:`settle` sets ``failure``.
    - ``not_sent``: the recipients of those failed messages, counted neither
      accepted nor rejected (:meth:`BatchAttempt.message_failed` fills it).
    """

    __slots__ = (
        "_call",
        "_message",
        "_provider_ids",
        "attachments",
        "bcc",
        "category",
        "cc",
        "failed_messages",
        "failure",
        "http_status",
        "message_count",
        "message_id",
        "not_sent",
        "operation",
        "provider_message_id",
        "recipient_count",
        "recipients",
        "rejected",
        "sender",
        "server_address",
        "server_port",
        "size",
        "smtp_code",
        "subject",
        "system",
        "template_id",
        "to",
    )

    def __init__(
        self,
        system: str,
        operation: str,
        server_address: Optional[str] = None,
        server_port: Optional[int] = None,
    ) -> None:
        self.system = system
        self.operation = operation
        self.server_address = server_address
        self.server_port = server_port
        # Request: raw values, read by the privacy policy only.
        self.sender: Optional[str] = None
        self.to: Sequence[str] = ()
        self.cc: Sequence[str] = ()
        self.bcc: Sequence[str] = ()
        # Envelope recipients, when they differ from to + cc + bcc (SMTP).
        self.recipients: Optional[Sequence[str]] = None
        self.recipient_count: Optional[int] = None
        self.message_id: Optional[str] = None
        self.subject: Optional[str] = None
        self.size: Optional[int] = None
        self.attachments: Optional[int] = None
        self.template_id: Optional[str] = None
        # The kind of mail: a hook's choice, or the message's first tag or
        # category as the adapter reads it (the core bounds it).
        self.category: Optional[str] = None
        self.message_count = 1
        # Outcome.
        self.provider_message_id: Optional[str] = None
        self._provider_ids: Tuple[str, ...] = ()
        self.smtp_code: Optional[int] = None
        self.http_status: Optional[int] = None
        # Recipients refused while the message still went out: (address, code).
        # The address is None where a provider reports only a count.
        self.rejected: List[Rejected] = []
        # Messages of a batch that the provider reported failed, each with
        # why, and the recipients of those messages (counted as neither
        # accepted nor rejected).
        self.failed_messages: List[Failure] = []
        self.not_sent: List[str] = []
        # Set when the whole operation failed (raised, or reported failed).
        self.failure: Optional[Failure] = None
        # The call's arguments (set by the core) and the message object an
        # adapter names: what hooks read as ``message``.
        self._call: Optional[Tuple[Tuple[Any, ...], Dict[str, Any]]] = None
        self._message: Any = None

    @property
    def message(self) -> Any:
        """The message as the application passed it to the library, for
        hooks to read their own attributes from (a header, a tag, an order
        id): an ``email.message.Message`` or the raw bytes for SMTP, a Django
        or Flask-Mail message object, a provider's payload (``Mail``, the
        request dict or the keyword arguments). Never recorded by this
        package; hooks must not put addresses, subjects or bodies from it
        into telemetry. When an adapter names none: the call's first
        positional argument, else its keyword arguments."""
        if self._message is not None:
            return self._message
        if self._call is None:
            return None
        args, kwargs = self._call
        return args[0] if args else kwargs

    @message.setter
    def message(self, value: Any) -> None:
        self._message = value

    @property
    def is_send(self) -> bool:
        return self.operation == OP_SEND or self.operation == OP_SEND_BATCH

    def set_provider_ids(self, ids: Iterable[Any]) -> None:
        """The provider's ids for the messages of a batch, as one value: the
        first 20, comma-separated (one id: just that id), each without the
        angle brackets of a Message-ID (see :func:`bare_id`)."""
        kept = [bare_id(str(i)[:MAX_ID_SEARCH]) for i in ids if i][:MAX_ADDRESSES_PER_ATTRIBUTE]
        self._provider_ids = tuple(kept)
        self.provider_message_id = ",".join(kept) or None

    def provider_ids(self) -> Tuple[str, ...]:
        """The provider's ids as the adapter gave them: those of
        :meth:`set_provider_ids`, else ``provider_message_id`` as one id (an
        id may hold a comma: it is not split)."""
        value = self.provider_message_id
        if not value:
            return ()
        ids = self._provider_ids
        if ids and ",".join(ids) == value:
            return ids
        return (value,)

    def addresses(self) -> List[str]:
        """Every address the attempt names: the sender, each recipient (also
        those of a batch's failed messages) and each refused one. Raw: for
        the privacy policy's checks only. A list, not a generator: a reader
        that stops early would leave a generator to be closed with an
        exception."""
        found = [self.sender] if self.sender else []
        found += self.envelope()
        if self.not_sent:
            found += self.not_sent
        if self.rejected:
            found += [address for address, _code in self.rejected if address]
        return found

    def envelope(self) -> Sequence[str]:
        """Every recipient the message was addressed to."""
        if self.recipients is not None:
            return self.recipients
        return [*self.to, *self.cc, *self.bcc]

    def __repr__(self) -> str:  # no addresses: reprs end up in logs
        return (
            f"<EmailAttempt {self.operation} {self.system} {self.server_address}:"
            f"{self.server_port} failure={self.failure!r}>"
        )


def bare_id(value: str) -> str:
    """A provider's message id without the angle brackets some give it in
    Message-ID form (Mailgun ``<2024….abc@mg.example>``, Brevo): the form a
    delivery webhook's id is matched in."""
    return value.strip().strip("<>")


def arg(
    args: Tuple[Any, ...], kwargs: Dict[str, Any], index: int, name: str, default: Any = None
) -> Any:
    """A wrapped call's argument, passed by position or by name."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


# Fills the attempt the core built from the operation's system and name
# (server, who, what) from a call's instance and arguments, and returns it;
# None: this call sends nothing (a resumed poller, a client that only returns
# a future), and it runs untraced.
Describe = Callable[[Any, Any, Tuple[Any, ...], Dict[str, Any]], Optional[EmailAttempt]]
OnResult = Callable[[EmailAttempt, Any], None]
OnError = Callable[[EmailAttempt, BaseException], Failure]
OnNested = Callable[[EmailAttempt, Any, Tuple[Any, ...], Dict[str, Any]], None]
Observe = Callable[[EmailAttempt, Any, Tuple[Any, ...], Dict[str, Any], Any], None]
Keep = Callable[[Any, Tuple[Any, ...], Dict[str, Any], Any], None]


class Propagation:
    """What a send carries to the provider for its delivery webhooks to echo
    back: the send span's W3C ``traceparent`` and the send time (Unix
    milliseconds), as the core hands them to an operation's ``inject``.

    ``headers`` is true when the user allowed headers recipients can see
    (``OTEL_INSTRUMENTATION_EMAIL_PROPAGATE=headers``): only then may an
    adapter add a header or a field the provider turns into one (Mailgun
    ``v:`` variables, Brevo ``X-Mailin-custom``)."""

    __slots__ = ("headers", "sent_at", "traceparent")

    def __init__(self, traceparent: str, sent_at: str, headers: bool) -> None:
        self.traceparent = traceparent
        self.sent_at = sent_at
        self.headers = headers

    def fields(self) -> Dict[str, str]:
        """The custom-data entries: key to value, both strings."""
        return {PROPAGATION_TRACEPARENT: self.traceparent, PROPAGATION_SENT_AT: self.sent_at}

    def header_fields(self) -> Dict[str, str]:
        """The same as message headers: name to value."""
        return {
            PROPAGATION_TRACEPARENT_HEADER: self.traceparent,
            PROPAGATION_SENT_AT_HEADER: self.sent_at,
        }

    def __repr__(self) -> str:
        return f"<Propagation {self.traceparent} {self.sent_at} headers={self.headers}>"


# The call's arguments with the propagation fields added to copies of what the
# application passed (its own objects are never changed), or None to leave
# the call as it is (the app's field is taken, a limit would be exceeded).
Inject = Callable[
    [EmailAttempt, Any, Propagation, Tuple[Any, ...], Dict[str, Any]],
    Optional[Tuple[Tuple[Any, ...], Dict[str, Any]]],
]


def _ignore_result(attempt: EmailAttempt, result: Any) -> None:
    return None


def _classify(attempt: EmailAttempt, exc: BaseException) -> Failure:
    return exception_failure(exc)


class Adopt:
    """Another instrumentation's CLIENT span for the very call an operation
    wraps, to use as the send span instead of opening a second one.

    The span current when the call starts is adopted when it is recording, a
    CLIENT span, from an instrumentation scope whose name starts with
    ``scope``, and each attribute named in ``attributes`` has one of the
    listed values. The core makes that check (adapters never look at spans)
    and fails safe: when the other instrumentation renames its scope or
    attributes, nothing matches and the operation opens its own span. An
    adopted span is renamed, given the email attributes and left for its
    owner to end.
    """

    __slots__ = ("attributes", "scope")

    def __init__(self, scope: str, attributes: Mapping[str, Collection[Any]]) -> None:
        self.scope = scope
        self.attributes = dict(attributes)


OperationKey = Tuple[str, str]
_KEYS: Dict[OperationKey, OperationKey] = {}


def operation_key(system: str, name: str) -> OperationKey:
    """One shared ``(system, name)`` object per kind of operation: the core
    tells an operation nested in one of its own kind (and an observer its
    operation) by identity."""
    return _KEYS.setdefault((system, name), (system, name))


class Operation:
    """How an adapter reads one library call.

    The core builds the attempt from ``system`` and ``name`` (an instance
    of ``attempt_type``: :class:`EmailAttempt`, :class:`BatchAttempt` or an
    adapter's own subclass). Then:

    - ``describe(attempt, instance, args, kwargs)`` fills it before the call
      and returns it, or None when this call sends nothing (it then runs
      untraced); it may make a ``send`` a ``send_batch``;
    - ``on_result(attempt, result)`` reads the return value (and may set
      ``attempt.failure`` for libraries that report errors without raising);
    - ``on_error(attempt, exc)`` turns the exception into a :class:`Failure`;
    - ``on_nested(outer, instance, args, kwargs)`` runs instead of a second
      span when the library calls an operation of the same system and name
      from inside it (smtplib's ``send_message`` calling ``sendmail``);
    - ``adopt``: see :class:`Adopt`;
    - ``inject(attempt, instance, propagation, args, kwargs)``: for a send, the
      arguments to call the library with instead, carrying ``propagation``
      in the provider's custom-data field (see :data:`Inject`). Runs after
      the request hook, only when propagation is on; with
      ``inject_needs_headers``, only with ``propagate="headers"`` (an
      ``inject`` that leaves the call alone in the other modes: the core
      then skips it, and the traceparent it would format).
    """

    __slots__ = (
        "adopt",
        "attempt_type",
        "describe",
        "inject",
        "inject_needs_headers",
        "key",
        "name",
        "on_error",
        "on_nested",
        "on_result",
        "system",
    )

    def __init__(
        self,
        system: str,
        name: str,
        describe: Describe,
        on_result: OnResult = _ignore_result,
        on_error: OnError = _classify,
        on_nested: Optional[OnNested] = None,
        adopt: Optional[Adopt] = None,
        attempt_type: Callable[[str, str], EmailAttempt] = EmailAttempt,
        inject: Optional[Inject] = None,
        inject_needs_headers: bool = False,
    ) -> None:
        self.system = system
        self.name = name
        self.describe = describe
        self.on_result = on_result
        self.on_error = on_error
        self.on_nested = on_nested
        self.adopt = adopt
        self.attempt_type = attempt_type
        self.inject = inject
        self.inject_needs_headers = inject_needs_headers
        self.key = operation_key(system, name)


class Observer:
    """A call that gets no span of its own but tells the operation around it
    something the library does not return (smtplib's final DATA reply)."""

    __slots__ = ("key", "observe", "system", "within")

    def __init__(self, system: str, within: str, observe: Observe) -> None:
        self.system = system
        self.within = within
        self.observe = observe
        self.key = operation_key(system, within)


class Stash:
    """A call that gets no span, whose arguments or result a later call of
    the same library needs (botocore builds a request's parameters in one
    method and sends the request in another): ``keep(instance, args, kwargs,
    result)`` runs after the call returns and puts what it needs where the
    later call's ``describe`` finds it, in the library's own per-call state.
    Anything it raises is swallowed."""

    __slots__ = ("keep",)

    def __init__(self, keep: Keep) -> None:
        self.keep = keep


def item_count(value: Any) -> int:
    """How many items a list or tuple holds (attachments, say); 0 for
    anything else, an absent argument included."""
    return len(value) if isinstance(value, (list, tuple)) else 0


def shared(values: Iterable[Optional[str]]) -> Optional[str]:
    """The value every message of a batch has in common (sender, subject,
    template), else None."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


Recipients = Tuple[Sequence[str], Sequence[str], Sequence[str]]


class BatchAttempt(EmailAttempt):
    """An attempt that keeps each message's recipients, so that a message
    the provider reports failed has its recipients counted as not sent."""

    __slots__ = ("per_message",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.per_message: List[List[str]] = []

    def set_messages(self, messages: Iterable[Recipients]) -> None:
        """The (to, cc, bcc) of each message, in request order: the attempt's
        recipients are all of them (each message is delivered on its own)."""
        to: List[str] = []
        cc: List[str] = []
        bcc: List[str] = []
        for message_to, message_cc, message_bcc in messages:
            to.extend(message_to)
            cc.extend(message_cc)
            bcc.extend(message_bcc)
            self.per_message.append([*message_to, *message_cc, *message_bcc])
        self.to, self.cc, self.bcc = to, cc, bcc
        # The one way a batch is counted: its messages, and at least one, so
        # that a call carrying none that fails still shows in the counter.
        self.message_count = max(len(self.per_message), 1)

    def message_failed(self, index: int, failure: Failure) -> None:
        """The provider reported the message at ``index`` failed."""
        self.failed_messages.append(failure)
        if 0 <= index < len(self.per_message):
            self.not_sent.extend(self.per_message[index])


class FrameworkAttempt(EmailAttempt):
    """A framework call that hands messages to a transport (a Django backend's
    ``send_messages``): an INTERNAL span, parent of the transport's spans.

    ``system`` and ``operation`` name the call (``django``,
    ``send_messages``); ``messages`` holds one :class:`EmailAttempt` per
    message handed in, in order, each with the transport's system (``smtp``
    for an SMTP backend) and what the message says (addresses, subject).
    ``backend`` is the backend's class; ``sent`` the number the framework
    reports sent (its return value), when it reports one.

    The core counts each message once, at the lowest layer that saw it: the
    transport's sends made during the call count their own messages; the
    messages none of them saw are counted here, failed with what stopped
    them (the call's exception, else the last failed transport operation:
    a refused connection, a refused login), or sent when the framework
    reports them sent and nothing failed (a backend with no transport
    beneath it, such as Django's locmem)."""

    __slots__ = ("backend", "messages", "sent")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.backend: Optional[str] = None
        self.messages: List[EmailAttempt] = []
        self.sent: Optional[int] = None


def _unnamed(attempt: EmailAttempt) -> None:
    """Failures whose ``error.type`` (a provider's code, as the answer gave
    it) holds a local part or a domain of the message's addresses become
    ``rejected``: error.type is a metric attribute."""
    words: Optional[Words] = None

    def unnamed(failure: Failure) -> Failure:
        nonlocal words
        kind = failure.error_type
        if kind in FIXED_ERROR_TYPES or kind.isdigit():
            return failure
        if words is None:
            words = address_words(attempt.addresses(), True)
        return Failure(ERROR_REJECTED, failure.retryable) if holds_a_word(kind, words) else failure

    if attempt.failure is not None:
        attempt.failure = unnamed(attempt.failure)
    if attempt.failed_messages:
        attempt.failed_messages = [unnamed(failure) for failure in attempt.failed_messages]


def settle(attempt: EmailAttempt) -> None:
    """The outcome rules the core applies to every attempt once its adapter
    has read the outcome: a failure whose ``error.type`` (a provider's own
    code) names one of the message's addresses (its local part or domain,
    as a word) is ``rejected``; a batch whose every message the provider
    reported failed has failed as a whole, as a single send would have. Its
    ``error.type`` is the messages' when they all share one, else
    ``rejected``; it is retryable only when every message's failure is."""
    if attempt.failure is not None or attempt.failed_messages:
        _unnamed(attempt)
    failed = attempt.failed_messages
    if attempt.failure is None and failed and len(failed) >= attempt.message_count:
        first = failed[0]
        same = all(f.error_type == first.error_type for f in failed)
        attempt.failure = Failure(
            first.error_type if same else ERROR_REJECTED, all(f.retryable for f in failed)
        )
