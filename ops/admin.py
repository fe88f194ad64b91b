"""`orders-admin`: look at and repair the pipeline (event log -> relay -> Kafka -> projector).

Configured like the services, from the environment only (EVENT_STORE_URL, READ_MODEL_URL,
KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, COMMAND_API_URL, ...). Exit status: 0 done, 1 an
operational failure (Kafka, a database or the command API) or a declined confirmation,
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable

from kafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from command_service.adapters.event_store import EventStore, EventStoreUnavailable
from ops.auth_commands import add_auth_commands
from ops.pipeline_status import (
    KAFKA_TIMEOUT_S,
    read_event_log_status,
    read_pipeline_status,
)
from ops.republish import InvalidRange, RepublishFailed, check_range, republish_range
from ops.status_text import render_status
from query_service.projector.lag import kafka_end_offsets
from query_service.rebuild import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from query_service.rebuild import main as rebuild_main
from shared.infra.config import ConfigError, Settings
from shared.infra.db import create_database_engine
from shared.infra.kafka import create_producer
from shared.infra.progress import ProgressBar
from shared.infra.structured_logging import configure_logging

log = logging.getLogger("ops.admin")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Command = Callable[[argparse.Namespace, Settings], int]

REPUBLISH_DESCRIPTION = """\
Send the events at log positions FROM..TO (inclusive) to the topic again, exactly as the relay
sent them: same key (the order id, so the same partition), same JSON value, same CloudEvents
headers; acks=all and the idempotent producer.

Why this is safe, even while the relay and the projector run: a copy carries the same event id
and stream version as the original, so consumers drop it as a duplicate (the projector skips an
event at or below the version it applied), and the same key keeps each order's copies on its
own partition in version order. The relay's published position is NOT moved: it keeps
recording what the relay itself delivered.
"""


def main(argv: list[str] | None = None) -> int:
    """Console script entry point; the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"orders-admin: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level)
    command: Command = args.command
    return command(args, settings)


def build_parser() -> argparse.ArgumentParser:
    """The `orders-admin` command line: status, republish, rebuild, token and keys."""
    parser = argparse.ArgumentParser(
        prog="orders-admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", required=True)

    status = commands.add_parser(
        "status",
        help="log head, relay position and lease, topic end offsets, projector lag",
        description="Where each stage is. Never creates a database; Kafka gets a deadline.",
    )
    status.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    status.add_argument(
        "--kafka-timeout",
        type=_positive_float,
        default=KAFKA_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for Kafka (default {KAFKA_TIMEOUT_S})",
    )
    status.set_defaults(command=show_status)

    republish = commands.add_parser(
        "republish",
        help="send a range of log positions to the topic again",
        description=REPUBLISH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    republish.add_argument(
        "--from", dest="first", type=_position, required=True, help="first position (from 1)"
    )
    republish.add_argument(
        "--to", dest="last", type=_position, required=True, help="last position (at most the head)"
    )
    republish.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_reason(republish)
    republish.set_defaults(command=republish_positions)

    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild the read model from the command API's event feed (query-rebuild)",
        description="Runs query-rebuild: replaces the read model in one transaction.",
    )
    rebuild.add_argument(
        "--page-size",
        type=_page_size,
        default=DEFAULT_PAGE_SIZE,
        metavar="N",
        help=f"events per feed request, 1..{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
    )
    rebuild.add_argument(
        "--no-kafka", action="store_true", help="do not store the topic's end offsets"
    )
    _add_reason(rebuild)
    rebuild.set_defaults(command=rebuild_read_model)
    add_auth_commands(commands)
    return parser


def _add_reason(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--reason",
        required=True,
        type=_reason,
        help="why (recorded in the audit log line with your OS user)",
    )


def _audit(action: str, args: argparse.Namespace, **details: object) -> None:
    """One log line per repair: who ran it (the OS user), why, and on what."""
    log.warning(
        f"orders-admin {action}",
        extra={"audit": True, "os_user": getpass.getuser(), "reason": args.reason, **details},
    )


def show_status(args: argparse.Namespace, settings: Settings) -> int:
    """`orders-admin status`: print the report; exit 0 whenever a report could be made."""
    # The report says what went wrong with Kafka; kafka-python's reconnect logs would be noise.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    status = read_pipeline_status(settings, args.kafka_timeout)
    print(json.dumps(status.as_json_dict(), indent=2) if args.json else render_status(status))
    return EXIT_OK


def republish_positions(args: argparse.Namespace, settings: Settings) -> int:
    """`orders-admin republish`: validate, confirm, check the topic, then send with progress."""
    first, last = args.first, args.last
    event_log, relay = read_event_log_status(settings)
    if event_log.state == "error":
        return _failed(f"cannot read the event log: {event_log.error}")
    try:
        check_range(first, last, event_log.head_position or 0)
    except InvalidRange as exc:
        print(f"orders-admin republish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    count = last - first + 1
    topic, servers = settings.kafka_topic, settings.kafka_bootstrap_servers
    if not args.yes:
        if not sys.stdin.isatty():
            print("orders-admin republish: not a terminal; pass --yes to confirm", file=sys.stderr)
            return EXIT_USAGE
        question = f"Re-publish {count:,} events ({first}..{last}) to {topic} on {servers}?"
        answer = input(f"{question} [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return _failed("declined; nothing was sent")
    if relay.published_position is not None and last > relay.published_position:
        print(
            f"note: the relay has published up to {relay.published_position}; it will send the "
            "positions after that itself as well",
            file=sys.stderr,
        )
    try:
        # A producer would create a missing topic with the broker's defaults; ask first.
        end_offsets = kafka_end_offsets(settings, KAFKA_TIMEOUT_S)
    except Exception as exc:
        return _failed(f"Kafka at {servers} unreachable ({exc}); nothing was sent")
    if not end_offsets:
        return _failed(f"topic {topic!r} does not exist on {servers}; nothing was sent")
    _audit("republish", args, first=first, last=last, topic=topic)
    return _send(settings, first, last)


def _send(settings: Settings, first: int, last: int) -> int:
    engine = create_database_engine(settings.event_store_url, settings.sqlite_synchronous)
    progress = ProgressBar(last - first + 1, "republish")
    try:
        producer = create_producer(settings, client_id="orders-admin-republish")
        try:
            sent = republish_range(
                EventStore(engine),
                producer,
                settings.kafka_topic,
                settings.cloudevents_source,
                first,
                last,
                settings.kafka_delivery_timeout_ms / 1000,
                progress,
            )
        finally:
            producer.close(timeout=5)
    except RepublishFailed as exc:
        progress.close()
        done = "nothing" if exc.position == first else f"{first}..{exc.position - 1}"
        return _failed(f"{exc}; {done} re-published, re-run with --from {exc.position}")
    except (KafkaError, EventStoreUnavailable, SQLAlchemyError) as exc:
        progress.close()
        return _failed(f"re-publishing failed: {exc!r}")
    finally:
        engine.dispose()
    progress.close()
    print(
        f"re-published {sent:,} events (positions {first}..{last}) to {settings.kafka_topic}; "
        "the relay's published position is unchanged"
    )
    return EXIT_OK


def rebuild_read_model(args: argparse.Namespace, _settings: Settings) -> int:
    """`orders-admin rebuild`: run query-rebuild (it reads the same environment)."""
    _audit("rebuild", args, page_size=args.page_size, no_kafka=args.no_kafka)
    argv = ["--page-size", str(args.page_size)]
    if args.no_kafka:
        argv.append("--no-kafka")
    return rebuild_main(argv)


def _failed(message: str) -> int:
    print(f"orders-admin: {message}", file=sys.stderr)
    return EXIT_FAILED


def _reason(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("say why, in a few words")
    return text.strip()


def _position(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a log position: {text!r}") from None


def _page_size(text: str) -> int:
    value = _position(text)
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_PAGE_SIZE}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


if __name__ == "__main__":
    sys.exit(main())
