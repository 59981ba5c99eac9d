"""docs/delivery.md prints each provider's event table as the code has it
(``receivers/<provider>.py``, ``TABLE``). Regenerate the section with
``python -m tests.delivery.test_tables``."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery.receivers import MODULES, table_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "delivery.md"
START = "<!-- event tables: python -m tests.delivery.test_tables -->"
END = "<!-- end of event tables -->"


def render() -> str:
    lines = [START]
    for provider in MODULES:
        lines += [
            "",
            f"### {provider}",
            "",
            "| provider event | `email.delivery.event` | `email.delivery.bounce.type` |",
            "| --- | --- | --- |",
        ]
        for name, (event, bounce) in table_of(provider).items():
            if event == c.BOUNCED and bounce is None:
                bounce = "from the event's details, else undetermined"
            lines.append(f"| `{name}` | {event} | {bounce or ''} |")
    lines += ["", END]
    return "\n".join(lines)


def test_every_event_of_every_table_is_in_the_vocabulary() -> None:
    for provider in MODULES:
        for name, (event, bounce) in table_of(provider).items():
            assert event in c.DELIVERY_EVENTS, (provider, name)
            assert bounce in (None, c.BOUNCE_HARD, c.BOUNCE_SOFT, c.BOUNCE_UNDETERMINED)
            assert bounce is None or event == c.BOUNCED, (provider, name)


def test_the_doc_prints_the_tables_the_code_uses() -> None:
    text = DOC.read_text()
    assert render() in text, "run: python -m tests.delivery.test_tables"


if __name__ == "__main__":
    text = DOC.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + render() + tail)
