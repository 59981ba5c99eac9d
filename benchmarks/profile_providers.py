"""Where the SendGrid and SES adapters spend their CPU, without network noise.

    python benchmarks/profile_providers.py
    python benchmarks/profile_providers.py --number 20000

``overhead.py``'s cases f-h measure a provider send against local servers,
where the wait for the server dominates and jitters. This script starts the
same servers, makes one real send of each kind to capture what the adapters
see (the SendGrid ``Mail`` and the SDK's ``Response``; botocore's
parameters, request dict and parsed answer), then replaces the network with
that captured answer and times:

1. per send, with the SDK configured as ``sdk_setup.py`` does: the bare call
   (the captured answer returned at once), the package's wrappers around
   it, and the floor (``floor.py``: the same span, metric points and log
   record, straight on the SDK) around it. Instrumented minus floor is the
   package's own CPU per send;
2. each adapter function alone, and the core's pieces for the same attempt,
   in µs per call (``timeit``, median of 7 repetitions).

Tight-loop figures, warm caches: in situ, after a blocking ``recv``, the
same code costs about twice as much (overhead.py's floor arm measures that).
The wrappers are called directly, so wrapt's ``FunctionWrapper`` (about
0.4 µs per wrapped call) is not in part 1. The adapters' private functions
are called by name: when ``src/`` renames one, its row says so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import botocore.client
import floor
from cases import AWS, HOST, RECIPIENT, SENDER, SENDGRID_KEY, SUBJECT, TEXT
from opentelemetry.trace import SpanKind
from overhead import SinkServer
from sdk_setup import configure_sdk

from opentelemetry.instrumentation.email import _attributes
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt
from opentelemetry.instrumentation.email._instrumentor import telemetry_from_kwargs
from opentelemetry.instrumentation.email.providers import _http, ses
from opentelemetry.instrumentation.email.providers import sendgrid as sendgrid_adapter


def per_call_us(fn: Callable[[], Any], number: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


# -- one real send of each kind -----------------------------------------------------------


def sendgrid_capture(port: int) -> Dict[str, Any]:
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import Mail

    client = SendGridAPIClient(SENDGRID_KEY, host=f"http://{HOST}:{port}")
    mail = Mail(
        from_email=(SENDER, "Shop"),
        to_emails=[(RECIPIENT, "Alice Example")],
        subject=SUBJECT,
        plain_text_content=TEXT,
    )
    response = client.send(mail)
    assert response.status_code == 202, response.status_code
    return {"client": client, "mail": mail, "response": response, "send": lambda: client.send(mail)}


def ses_capture(port: int) -> Dict[str, Dict[str, Any]]:
    """botocore's arguments and results at the two methods the adapter
    wraps, for one SESv2 and one SES v1 ``send_email``."""
    import boto3

    endpoint = f"http://{HOST}:{port}"
    v1 = boto3.client("ses", endpoint_url=endpoint, **AWS)
    v2 = boto3.client("sesv2", endpoint_url=endpoint, **AWS)
    v1.verify_email_identity(EmailAddress=SENDER)
    calls = {
        "sesv2": (
            v2,
            {
                "FromEmailAddress": f"Shop <{SENDER}>",
                "Destination": {"ToAddresses": [f"Alice Example <{RECIPIENT}>"]},
                "Content": {
                    "Simple": {
                        "Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": TEXT, "Charset": "UTF-8"}},
                    }
                },
            },
        ),
        "ses": (
            v1,
            {
                "Source": f"Shop <{SENDER}>",
                "Destination": {"ToAddresses": [f"Alice Example <{RECIPIENT}>"]},
                "Message": {
                    "Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": TEXT, "Charset": "UTF-8"}},
                },
            },
        ),
    }
    base = botocore.client.BaseClient
    emit, make = base._emit_api_params, base._make_request
    seen: Dict[str, Any] = {}

    def emit_spy(self: Any, api_params: Any, operation_model: Any, context: Any) -> Any:
        params = emit(self, api_params, operation_model, context)
        seen["emit"] = (api_params, operation_model, params)
        return params

    def make_spy(self: Any, operation_model: Any, request_dict: Any, request_context: Any) -> Any:
        result = make(self, operation_model, request_dict, request_context)
        seen["make"] = (request_dict, result)
        return result

    out: Dict[str, Dict[str, Any]] = {}
    base._emit_api_params, base._make_request = emit_spy, make_spy  # type: ignore[method-assign]
    try:
        for name, (client, params) in calls.items():
            seen.clear()
            client.send_email(**params)
            api_params, model, final = seen["emit"]
            request_dict, result = seen["make"]
            out[name] = {
                "client": client,
                "api_params": api_params,
                "model": model,
                "params": final,
                "request_dict": request_dict,
                "result": result,
                "send": lambda client=client, params=params: client.send_email(**params),
            }
    finally:
        base._emit_api_params, base._make_request = emit, make  # type: ignore[method-assign]
    return out


# -- part 1: the whole path per send --------------------------------------------------------


def whole_path(
    label: str,
    plain: Callable[[], Any],
    instrumented: Callable[[], Any],
    replay: Callable[..., Any],
    number: int,
) -> List[str]:
    bare = per_call_us(plain, number)
    inst = per_call_us(instrumented, number)
    floored = per_call_us(lambda: replay(plain), number)
    return [
        f"{label:<28} {bare:>9.1f} {inst - bare:>+13.1f} {floored - bare:>+11.1f}"
        f" {inst - floored:>+11.1f}"
    ]


# -- part 2: functions alone ----------------------------------------------------------------


def row(label: str, fn: Callable[[], Any], number: int, note: str = "") -> str:
    try:
        fn()
    except (AttributeError, TypeError) as exc:  # src renamed or changed it
        return f"  {label:<52} {'n/a':>8}  ({type(exc).__name__}: {exc})"
    return f"  {label:<52} {per_call_us(fn, number):>8.2f}  {note}"


def ses_paths(
    cap: Dict[str, Any], keep_wrapper: Any, request_wrapper: Any
) -> Tuple[Callable[[], Any], ...]:
    """The bare call and the instrumented one for a captured SES send: the
    adapter's two wrappers, each around a function returning what botocore
    returned."""
    api_params, model, params = cap["api_params"], cap["model"], cap["params"]
    request_dict, result, client = cap["request_dict"], cap["result"], cap["client"]

    def plain() -> Any:
        return params, result

    def instrumented() -> Any:
        context: Dict[str, Any] = {}
        kept = keep_wrapper(lambda *a, **k: params, client, (api_params, model, context), {})
        answer = request_wrapper(lambda *a, **k: result, client, (model, request_dict, context), {})
        return kept, answer

    return plain, instrumented


def ses_rows(name: str, cap: Dict[str, Any], number: int) -> List[str]:
    api_params, model, params = cap["api_params"], cap["model"], cap["params"]
    request_dict, result, client = cap["request_dict"], cap["result"], cap["client"]
    send = ses.SENDS[(client.meta.service_model.service_name, model.name)]
    context: Dict[str, Any] = {}

    def keep() -> None:
        ses._keep_params(client, (api_params, model, context), {}, params)

    def describe() -> Any:
        context[ses._PENDING] = (send, params)
        new = ses.REQUEST.attempt_type(c.SYSTEM_SES, c.OP_SEND)
        return ses._describe_request(new, None, (model, request_dict, context), {})

    attempt = describe()
    return [
        name,
        row("_keep_params (after _emit_api_params)", keep, number, "runs for every botocore call"),
        row(f"_describe_request ({send.read.__name__})", describe, number),
        row(
            "  _http.server_of(request url)",
            lambda: _http.server_of(request_dict["url"]),
            number,
            "urlsplit of the full URL",
        ),
        row(
            "_request_result(attempt, result)", lambda: ses._request_result(attempt, result), number
        ),
    ]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000, help="calls per timing (part 1)")
    args = parser.parse_args(argv)
    number = args.number
    small = number * 4  # the functions alone are 10-100x cheaper than a send

    servers = {kind: SinkServer(kind) for kind in ("sendgrid", "ses")}
    try:
        sg = sendgrid_capture(servers["sendgrid"].port)
        aws = ses_capture(servers["ses"].port)
        floors = {
            "sendgrid": floor.capture(sg["send"]),
            "sesv2": floor.capture(aws["sesv2"]["send"]),
            "ses": floor.capture(aws["ses"]["send"]),
        }
    finally:
        for server in servers.values():
            server.stop()

    sdk = configure_sdk()
    telemetry = telemetry_from_kwargs(sdk.providers())
    lines = [
        "CPU per provider send, the network replaced by the captured answer (tight loop, µs)",
        "",
        f"{'send':<28} {'bare call':>9} {'instrumented':>13} {'floor':>11} {'package':>11}",
    ]

    # SendGrid: BaseInterface.send (the _make_request inside it is nested:
    # it calls through, as with the real SDK).
    client, mail, response = sg["client"], sg["mail"], sg["response"]
    sg_wrapper = telemetry.sync_wrapper(sendgrid_adapter.SEND)
    request_wrapper = telemetry.sync_wrapper(sendgrid_adapter.REQUEST)

    def sg_inner(*_args: Any, **_kwargs: Any) -> Any:
        # What send() does before the network: Mail.get(), then the nested
        # _make_request wrapper, which calls through.
        mail.get()
        return request_wrapper(lambda *a, **k: response, client.client, (None, None), {})

    def sg_plain() -> Any:
        mail.get()
        return response

    lines += whole_path(
        "sendgrid send(Mail)",
        sg_plain,
        lambda: sg_wrapper(sg_inner, client, (mail,), {}),
        floor.replay(sdk, floors["sendgrid"]),
        number,
    )

    # SES: _emit_api_params then _make_request, as botocore calls them.
    ses_keep = telemetry.stash_wrapper(ses.KEEP_PARAMS)
    ses_request = telemetry.sync_wrapper(ses.REQUEST)
    for name in ("sesv2", "ses"):
        plain, instrumented = ses_paths(aws[name], ses_keep, ses_request)
        lines += whole_path(
            f"{name} send_email", plain, instrumented, floor.replay(sdk, floors[name]), number
        )
    lines += [
        "  bare call: the SDK's own pre-network work where the adapter's wrapper sits "
        "(SendGrid: Mail.get(); SES: nothing)",
        "  instrumented / floor: added to the bare call; package = instrumented - floor",
        "",
        "Functions alone, µs per call",
    ]

    # -- SendGrid functions
    host = client.client.host
    sg_attempt = sendgrid_adapter._describe_send(
        EmailAttempt(c.SYSTEM_SENDGRID, c.OP_SEND), client, (mail,), {}
    )
    lines += [
        "sendgrid",
        row(
            "_describe_send(client, (mail,))",
            lambda: sendgrid_adapter._describe_send(
                EmailAttempt(c.SYSTEM_SENDGRID, c.OP_SEND), client, (mail,), {}
            ),
            small,
        ),
        row(
            "  _read_mail(attempt, mail)",
            lambda: sendgrid_adapter._read_mail(EmailAttempt(c.SYSTEM_SENDGRID, c.OP_SEND), mail),
            small,
        ),
        row(f"  _http.server_of({host!r})", lambda: _http.server_of(host), small, "urlsplit"),
        row(
            "_read_response(attempt, response)",
            lambda: sendgrid_adapter._read_response(sg_attempt, response),
            small,
        ),
    ]

    # -- SES functions
    lines += ses_rows("sesv2", aws["sesv2"], small)
    lines += ses_rows("ses", aws["ses"], small)

    # -- the core, for the SESv2 attempt
    cap = aws["sesv2"]
    context = {ses._PENDING: (ses.SENDS[("sesv2", "SendEmail")], cap["params"])}
    attempt = ses._describe_request(
        ses.REQUEST.attempt_type(c.SYSTEM_SES, c.OP_SEND),
        None,
        (cap["model"], cap["request_dict"], context),
        {},
    )
    ses._request_result(attempt, cap["result"])
    privacy = telemetry.settings.privacy
    attributes = _attributes.request_attributes(privacy, attempt)
    lines += [
        "core, for the SESv2 attempt (SDK configured)",
        row(
            "request_attributes(privacy, attempt)",
            lambda: _attributes.request_attributes(privacy, attempt),
            small,
        ),
        row(
            "response_attributes(attempt, request)",
            lambda: _attributes.response_attributes(privacy, attempt, attributes),
            small,
        ),
        row(
            "EmailMetrics.record(attempt, duration)",
            lambda: telemetry._metrics.record(attempt, 0.0025),
            small,
            "3 metric points (no size), no span current",
        ),
        row(
            "EmailLog.emit(attempt, attributes, duration)",
            lambda: telemetry._log.emit(attempt, attributes, 0.0025),  # type: ignore[union-attr]
            small,
        ),
        row(
            "tracer.start_span(name, attributes) + end()",
            lambda: telemetry._tracer.start_span(
                "send ses", kind=SpanKind.CLIENT, attributes=attributes
            ).end(),
            small,
        ),
    ]
    print("\n".join(lines))
    sdk.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
