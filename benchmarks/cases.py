"""The benchmark cases, each run in a fresh process by ``overhead.py``.

``python benchmarks/cases.py CASE --port PORT --rounds N --block N``
measures one case against the server already listening on PORT (the SMTP
sink for a-e, ``http_sinks.py sendgrid`` for f, ``http_sinks.py ses``, that
is moto, for g and h) and writes one JSON object to stdout (progress goes to
stderr).

Cases a-d and f-h interleave the arms of a comparison in the same process, one
block per arm per round: ``plain`` (uninstrumented) and ``instrumented``
(switched with ``EmailInstrumentor().instrument()`` / ``uninstrument()``
between blocks, never inside a timed block), and in cases a, f and g also
``floor``: the plain send wrapped by a replay of its telemetry straight on
the SDK, an ideal instrumentation with no package code. The order of the arms cycles
through every permutation (AB, BA, ... or ABC, ACB, ...) so that drift
favours none. A round's ratio is the median of its instrumented block over
the median of its plain block.

Case e (the floor alone) has no mail library: it replays the exact span,
metric points and log record the package produced for one real 1 KB send.

Cases f-h send through the providers' own SDKs to local servers in another
process: f ``SendGridAPIClient(key, host=URL).send(Mail)``, g SESv2 and h SES
``send_email`` with boto3 and ``endpoint_url``, one message per send.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import smtplib
import statistics
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from time import perf_counter_ns, thread_time_ns
from typing import Any, Callable, Dict, List, Optional, Sequence

from opentelemetry.instrumentation.email import EmailInstrumentor

HOST = "127.0.0.1"
SENDER = "orders@shop.example"
RECIPIENT = "alice@example.com"
AIO_CONCURRENCY = 200

PLAIN, INSTRUMENTED, FLOOR, IDEAL = "plain", "instrumented", "floor", "ideal"

# Global-provider variables the API would load a provider from; case b
# must run with none of them.
_PROVIDER_VARIABLES = (
    "OTEL_PYTHON_TRACER_PROVIDER",
    "OTEL_PYTHON_METER_PROVIDER",
    "OTEL_PYTHON_LOGGER_PROVIDER",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- messages ----------------------------------------------------------------------------


def one_kb_message() -> bytes:
    """A transactional mail of about 1 KB, serialised once, as Django hands it
    to ``sendmail``."""
    message = EmailMessage()
    message["From"] = f"Shop <{SENDER}>"
    message["To"] = f"Alice Example <{RECIPIENT}>"
    message["Subject"] = "Your order #10432 has shipped"
    message["Message-ID"] = make_msgid(domain="shop.example")
    message["Date"] = "Tue, 04 Jun 2024 10:00:00 +0000"
    line = "Thank you for your order. Your parcel is on its way to you. Tracking: ZX-10432.\n"
    message.set_content(line * 8)
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    assert 900 <= len(raw) <= 1200, len(raw)
    return raw


def one_mb_message() -> EmailMessage:
    """A short text mail with a 1 MiB binary attachment (about 1.4 MB on the wire)."""
    message = EmailMessage()
    message["From"] = f"Reports <{SENDER}>"
    message["To"] = f"Alice Example <{RECIPIENT}>"
    message["Subject"] = "Your monthly statement"
    message["Message-ID"] = make_msgid(domain="shop.example")
    message.set_content("Your statement for May is attached.\n")
    payload = random.Random(1).randbytes(1024 * 1024)
    message.add_attachment(
        payload, maintype="application", subtype="octet-stream", filename="statement.bin"
    )
    return message


# -- switching arms ---------------------------------------------------------------------------


class Instrumentation:
    """Instrumented or not, with a check that the patch really is (not) there."""

    def __init__(self, probe: Callable[[], Any], **instrument_kwargs: Any) -> None:
        self._probe = probe
        self._kwargs = instrument_kwargs
        self.on = False

    def set(self, on: bool) -> None:
        if on != self.on:
            if on:
                EmailInstrumentor().instrument(**self._kwargs)
            else:
                EmailInstrumentor().uninstrument()
            self.on = on
        if hasattr(self._probe(), "__wrapped__") != on:
            raise RuntimeError(f"instrumentation switch failed: wanted on={on}")


Block = Callable[[], List[int]]  # one timed block -> a duration in ns per unit


def last_cpu(pid: Optional[int], thread: Optional[int] = None) -> Optional[int]:
    """The CPU the process's main thread (or its thread ``thread``) last ran
    on (Linux), else None."""
    if pid is None:
        return None
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    try:
        with open(path) as stat:
            text = stat.read()
    except OSError:
        return None
    # Field 39 ("processor"); fields 3.. follow the parenthesised command name.
    return int(text[text.rindex(")") + 2 :].split()[36])


# The server thread whose CPU ``placement`` compares with this process's:
# the HTTP servers' accepting thread (set by main() from --server-thread).
SERVER_THREAD: Optional[int] = None


def placement(server_pid: Optional[int]) -> str:
    """Whether this process and the server last ran on the same CPU. On a
    small VM it matters: a reply that must wake the other core costs more
    than one that stays on the same core, so the baseline is bimodal. For
    the HTTP servers it is their accepting thread (each connection is then
    served by a new thread, wherever the scheduler puts it)."""
    client, server = last_cpu(os.getpid()), last_cpu(server_pid, SERVER_THREAD)
    if client is None or server is None:
        return "unknown"
    return "same" if client == server else "split"


def interleaved_rounds(
    name: str,
    arms: Sequence[str],
    switch: Callable[[str], None],
    block: Block,
    rounds: int,
    server_pid: Optional[int],
) -> Dict[str, Any]:
    """One warm-up block per arm, then ``rounds`` rounds of one block per arm,
    the arms' order cycling through all permutations; ``switch(arm)`` sets
    the process up for an arm before its block. Besides each unit's wall
    time, a block records the CPU time of this (the main) thread over the
    block: what the client itself spent per unit, without the wait for the
    server (the SDK's export threads are not in it)."""
    for arm in arms:
        switch(arm)
        block()
    orders = list(itertools.permutations(arms))
    out: List[Dict[str, Any]] = []
    units = {arm: 0 for arm in arms}
    step = max(1, rounds // 5)
    for index in range(rounds):
        samples: Dict[str, List[int]] = {}
        cpu: Dict[str, float] = {}
        where = set()
        for arm in orders[index % len(orders)]:
            switch(arm)
            cpu_start = thread_time_ns()
            samples[arm] = block()
            cpu[arm] = (thread_time_ns() - cpu_start) / len(samples[arm]) / 1000
            units[arm] += len(samples[arm])
            where.add(placement(server_pid))
        medians = {arm: statistics.median(samples[arm]) / 1000 for arm in arms}
        means = {arm: statistics.fmean(samples[arm]) / 1000 for arm in arms}
        out.append(
            {
                "order": [arm[0].upper() for arm in orders[index % len(orders)]],
                "median_us": medians,
                "mean_us": means,
                "cpu_us": cpu,
                "ratio": medians[INSTRUMENTED] / medians[PLAIN],
                "mean_ratio": means[INSTRUMENTED] / means[PLAIN],
                "placement": where.pop() if len(where) == 1 else "mixed",
            }
        )
        if (index + 1) % step == 0 or index + 1 == rounds:
            log(f"  {name}: round {index + 1}/{rounds}, ratio {out[-1]['ratio']:.3f}")
    switch(PLAIN)
    return {"arms": list(arms), "rounds": out, "units": units}


# -- cases a, b, c: smtplib over one persistent connection -------------------------------


def _timed(send: Callable[[], Any], n: int) -> Block:
    def block() -> List[int]:
        times = []
        for _ in range(n):
            start = perf_counter_ns()
            refused = send()
            times.append(perf_counter_ns() - start)
            if refused:
                raise RuntimeError(f"server refused recipients: {refused}")
        return times

    return block


def _smtplib_case(
    name: str,
    args: argparse.Namespace,
    instrument_kwargs: Dict[str, Any],
    big: bool = False,
    floor_sdk: Any = None,
    ideal: bool = False,
) -> Dict[str, Any]:
    client = smtplib.SMTP(HOST, args.port)  # connected before instrumenting: no connect span
    client.ehlo()
    if big:
        message = one_mb_message()
        size = len(message.as_bytes())

        def plain_send() -> Any:
            return client.send_message(message)
    else:
        raw = one_kb_message()
        size = len(raw)

        def plain_send() -> Any:
            return client.sendmail(SENDER, [RECIPIENT], raw)

    arms = [PLAIN, INSTRUMENTED]
    send = plain_send
    if floor_sdk is not None:
        import floor

        replay = floor.replay(floor_sdk, floor.capture(plain_send))
        arms.append(FLOOR)

        def floor_send() -> Any:
            return replay(plain_send)

    uninstall_ideal: Optional[Callable[[], None]] = None
    if ideal and floor_sdk is not None:
        import ideal as ideal_arm

        ideal_arm.check(plain_send)  # the same telemetry as the package, or no run
        arms.append(IDEAL)

        def install_ideal() -> Callable[[], None]:
            sdk = floor_sdk
            return ideal_arm.install(sdk.tracer_provider, sdk.meter_provider, sdk.logger_provider)

    instrumentation = Instrumentation(lambda: smtplib.SMTP.sendmail, **instrument_kwargs)

    def switch(arm: str) -> None:
        nonlocal send, uninstall_ideal
        if uninstall_ideal is not None:
            uninstall_ideal()
            uninstall_ideal = None
        instrumentation.set(arm == INSTRUMENTED)
        if arm == IDEAL:
            uninstall_ideal = install_ideal()
        send = floor_send if arm == FLOOR else plain_send

    result = interleaved_rounds(
        name, arms, switch, _timed(lambda: send(), args.block), args.rounds, args.server_pid
    )
    client.quit()
    result.update(unit="send", message_bytes=size, connection="one persistent smtplib.SMTP")
    return result


def case_a(args: argparse.Namespace) -> Dict[str, Any]:
    """1 KB, smtplib, SDK with all three signals; with the floor arm."""
    from sdk_setup import configure_sdk

    sdk = configure_sdk()
    result = _smtplib_case("a", args, sdk.providers(), floor_sdk=sdk, ideal=args.ideal)
    result["exported"] = sdk.exported()
    sdk.shutdown()
    return result


def case_b(args: argparse.Namespace) -> Dict[str, Any]:
    """1 KB, smtplib, instrumenting with no SDK: the API's proxies only."""
    from opentelemetry._logs import get_logger_provider

    from opentelemetry import metrics, trace

    def globals_() -> List[str]:
        return [
            type(provider).__name__
            for provider in (
                trace.get_tracer_provider(),
                metrics.get_meter_provider(),
                get_logger_provider(),
            )
        ]

    before = globals_()
    result = _smtplib_case("b", args, {})
    after = globals_()
    if before != after or not all(n.startswith(("Proxy", "_Proxy", "NoOp")) for n in after):
        raise RuntimeError(f"case b needs no global providers, found {after}")
    result["global_providers"] = after
    result["sdk_imported"] = "opentelemetry.sdk" in sys.modules
    return result


def case_c(args: argparse.Namespace) -> Dict[str, Any]:
    """1 MiB attachment, smtplib.send_message, SDK with all three signals."""
    from sdk_setup import configure_sdk

    sdk = configure_sdk()
    result = _smtplib_case("c", args, sdk.providers(), big=True)
    result["exported"] = sdk.exported()
    sdk.shutdown()
    return result


# -- case d: aiosmtplib, 200 concurrent sends --------------------------------------------


def case_d(args: argparse.Namespace) -> Dict[str, Any]:
    """200 concurrent aiosmtplib sends per timed unit (one ``asyncio.gather``)."""
    import aiosmtplib
    from sdk_setup import configure_sdk

    sdk = configure_sdk()
    raw = one_kb_message()
    loop = asyncio.new_event_loop()
    clients: List[Any] = []

    if args.aio_mode == "pool":
        # Persistent connections, opened before instrumenting (the spans are
        # the sends only); with the default 200, every one of the 200
        # concurrent sends has a connection of its own, and no TCP connection
        # is opened or torn down while timing.
        pool: asyncio.Queue[Any] = asyncio.Queue()

        async def open_pool() -> None:
            for _ in range(args.aio_pool):
                client = aiosmtplib.SMTP(hostname=HOST, port=args.port)
                await client.connect()
                clients.append(client)
                pool.put_nowait(client)

        loop.run_until_complete(open_pool())

        async def one() -> Any:
            client = await pool.get()
            try:
                return await client.sendmail(SENDER, [RECIPIENT], raw)
            finally:
                pool.put_nowait(client)

        connection = f"{args.aio_pool} persistent aiosmtplib.SMTP connections, sendmail"
    else:
        # One connection per send, as aiosmtplib.send() makes it: spans
        # "send aiosmtplib" and, inside it, "connect smtp" and "send smtp".
        # Tens of thousands of
        # short connections fill the port range with TIME_WAIT sockets, which
        # makes this mode much noisier.
        async def one() -> Any:
            return await aiosmtplib.send(
                raw, sender=SENDER, recipients=[RECIPIENT], hostname=HOST, port=args.port
            )

        connection = "its own connection per send (aiosmtplib.send)"

    async def batch() -> int:
        start = perf_counter_ns()
        results = await asyncio.gather(*(one() for _ in range(AIO_CONCURRENCY)))
        elapsed = perf_counter_ns() - start
        for refused, _reply in results:
            if refused:
                raise RuntimeError(f"server refused recipients: {refused}")
        return elapsed

    def block() -> List[int]:
        return [loop.run_until_complete(batch()) for _ in range(args.block)]

    instrumentation = Instrumentation(lambda: aiosmtplib.SMTP.sendmail, **sdk.providers())
    result = interleaved_rounds(
        "d",
        [PLAIN, INSTRUMENTED],
        lambda arm: instrumentation.set(arm == INSTRUMENTED),
        block,
        args.rounds,
        args.server_pid,
    )

    async def close_pool() -> None:
        for client in clients:
            await client.quit()

    loop.run_until_complete(close_pool())
    loop.close()
    result.update(
        unit=f"batch of {AIO_CONCURRENCY} concurrent sends",
        concurrency=AIO_CONCURRENCY,
        message_bytes=len(raw),
        connection=connection,
        exported=sdk.exported(),
    )
    sdk.shutdown()
    return result


# -- case e: the SDK floor alone ----------------------------------------------------------------


def case_e(args: argparse.Namespace) -> Dict[str, Any]:
    """The bare SDK cost of one send's telemetry: no mail library, no package code."""
    import floor
    from sdk_setup import configure_sdk

    client = smtplib.SMTP(HOST, args.port)
    client.ehlo()
    raw = one_kb_message()
    captured = floor.capture(lambda: client.sendmail(SENDER, [RECIPIENT], raw))
    client.quit()
    sdk = configure_sdk()
    one_send = floor.replay(sdk, captured)

    def block() -> List[int]:
        times = []
        for _ in range(args.block):
            start = perf_counter_ns()
            one_send()
            times.append(perf_counter_ns() - start)
        return times

    block()  # warm-up
    rounds = []
    for _ in range(args.rounds):
        times = block()
        rounds.append(
            {
                "median_us": statistics.median(times) / 1000,
                "mean_us": statistics.fmean(times) / 1000,
            }
        )
    exported = sdk.exported()
    sdk.shutdown()
    return {
        "unit": "one send's telemetry",
        "rounds": rounds,
        "iterations_per_round": args.block,
        "replayed": floor.describe(captured),
        "exported": exported,
    }


# -- cases f, g, h: provider SDKs over HTTP to a local server --------------------------------

SENDGRID_KEY = "SG.benchmark-key.not-a-real-one"
SUBJECT = "Your order #10432 has shipped"
# The body of the 1 KB SMTP message: 656 characters of text.
TEXT = "Thank you for your order. Your parcel is on its way to you. Tracking: ZX-10432.\n" * 8
AWS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


def _provider_case(
    name: str,
    args: argparse.Namespace,
    sdk: Any,
    send: Callable[[], None],
    probe: Callable[[], Any],
    with_floor: bool,
) -> Dict[str, Any]:
    """A/B (and floor) rounds of one provider send: ``send()`` makes one
    request through the SDK and raises unless the server accepted it."""
    arms = [PLAIN, INSTRUMENTED]
    current = send
    replayed = None
    if with_floor:
        import floor

        captured = floor.capture(send)
        replayed = floor.describe(captured)
        replay = floor.replay(sdk, captured)
        arms.append(FLOOR)

        def floor_send() -> None:
            replay(send)

    instrumentation = Instrumentation(probe, **sdk.providers())

    def switch(arm: str) -> None:
        nonlocal current
        instrumentation.set(arm == INSTRUMENTED)
        current = floor_send if arm == FLOOR else send

    result = interleaved_rounds(
        name, arms, switch, _timed(lambda: current(), args.block), args.rounds, args.server_pid
    )
    result["exported"] = sdk.exported()
    if replayed is not None:
        result["replayed"] = replayed
    return result


def case_f(args: argparse.Namespace) -> Dict[str, Any]:
    """SendGrid: ``SendGridAPIClient(key, host=URL).send(Mail)``, one message
    to one recipient; SDK with all three signals; with the floor arm."""
    import sendgrid.base_interface
    from sdk_setup import configure_sdk
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import Mail

    sdk = configure_sdk()
    client = SendGridAPIClient(SENDGRID_KEY, host=f"http://{HOST}:{args.port}")
    # Built once, as the uninstrumented SDK reads it again (Mail.get()) on
    # every send; only send() is timed.
    mail = Mail(
        from_email=(SENDER, "Shop"),
        to_emails=[(RECIPIENT, "Alice Example")],
        subject=SUBJECT,
        plain_text_content=TEXT,
    )

    def send() -> None:
        response = client.send(mail)
        if response.status_code != 202 or not response.headers.get("X-Message-Id"):
            raise RuntimeError(f"SendGrid sink answered {response.status_code}")

    result = _provider_case(
        "f", args, sdk, send, lambda: sendgrid.base_interface.BaseInterface.send, True
    )
    sdk.shutdown()
    result.update(
        unit="send",
        message_bytes=len(json.dumps(mail.get())),
        connection="SendGrid SDK (python_http_client, urllib): a new connection per send",
    )
    return result


def _ses_clients(port: int) -> Any:
    import boto3
    import botocore.client

    endpoint = f"http://{HOST}:{port}"
    v1 = boto3.client("ses", endpoint_url=endpoint, **AWS)
    v2 = boto3.client("sesv2", endpoint_url=endpoint, **AWS)
    # moto rejects a sender that is not verified, as SES does in its sandbox.
    v1.verify_email_identity(EmailAddress=SENDER)
    return v1, v2, lambda: botocore.client.BaseClient._make_request


def case_g(args: argparse.Namespace) -> Dict[str, Any]:
    """SESv2 ``send_email`` with Simple content through boto3 to moto; SDK
    with all three signals; with the floor arm."""
    from sdk_setup import configure_sdk

    sdk = configure_sdk()
    _v1, v2, probe = _ses_clients(args.port)
    params = {
        "FromEmailAddress": f"Shop <{SENDER}>",
        "Destination": {"ToAddresses": [f"Alice Example <{RECIPIENT}>"]},
        "Content": {
            "Simple": {
                "Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": TEXT, "Charset": "UTF-8"}},
            }
        },
    }

    def send() -> None:
        if not v2.send_email(**params).get("MessageId"):
            raise RuntimeError("SESv2 send_email returned no MessageId")

    result = _provider_case("g", args, sdk, send, probe, True)
    sdk.shutdown()
    result.update(
        unit="send",
        connection="boto3 sesv2 client; moto's werkzeug closes every connection",
    )
    return result


def case_h(args: argparse.Namespace) -> Dict[str, Any]:
    """SES (v1) ``send_email`` through boto3 to moto; SDK with all three
    signals; no floor arm."""
    from sdk_setup import configure_sdk

    sdk = configure_sdk()
    v1, _v2, probe = _ses_clients(args.port)
    params = {
        "Source": f"Shop <{SENDER}>",
        "Destination": {"ToAddresses": [f"Alice Example <{RECIPIENT}>"]},
        "Message": {
            "Subject": {"Data": SUBJECT, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": TEXT, "Charset": "UTF-8"}},
        },
    }

    def send() -> None:
        if not v1.send_email(**params).get("MessageId"):
            raise RuntimeError("SES send_email returned no MessageId")

    result = _provider_case("h", args, sdk, send, probe, False)
    sdk.shutdown()
    result.update(
        unit="send",
        connection="boto3 ses client; moto's werkzeug closes every connection",
    )
    return result


CASES: Dict[str, Callable[[argparse.Namespace], Dict[str, Any]]] = {
    "a": case_a,
    "b": case_b,
    "c": case_c,
    "d": case_d,
    "e": case_e,
    "f": case_f,
    "g": case_g,
    "h": case_h,
}


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Run one benchmark case (see overhead.py).")
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--port", type=int, required=True, help="the case's server")
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--block", type=int, required=True, help="timed units per block")
    parser.add_argument("--aio-mode", choices=("pool", "connection"), default="pool")
    parser.add_argument("--aio-pool", type=int, default=AIO_CONCURRENCY)
    parser.add_argument("--server-pid", type=int, help="to record client/server CPU placement")
    parser.add_argument(
        "--server-thread", type=int, help="the server's thread to compare with (HTTP servers)"
    )
    parser.add_argument("--ideal", action="store_true", help="case a: add the ideal arm")
    args = parser.parse_args(argv)
    global SERVER_THREAD  # set once, before any case runs
    SERVER_THREAD = args.server_thread
    if args.case == "b":
        for variable in _PROVIDER_VARIABLES:
            if variable in os.environ:
                raise SystemExit(f"case b must run without {variable}")
    result = CASES[args.case](args)
    result["case"] = args.case
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
