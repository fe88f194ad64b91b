"""`command-relay`: the outbox relay process, run until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError

from command_service.adapters.event_store import EventStore
from command_service.outbox.backoff import Backoff
from command_service.outbox.lease import RelayLease, new_owner_id
from command_service.outbox.relay import Relay, create_relay_engine
from shared.infra.config import Settings
from shared.infra.metrics_dir import claim_metrics_dir
from shared.infra.structured_logging import configure_logging
from shared.infra.tracing import configure_tracing

log = logging.getLogger("command_service.relay")


def create_schema(store: EventStore, lease: RelayLease) -> None:
    # Processes starting together on a fresh SQLite file can see "database is locked" while
    # another one switches it to WAL or creates the tables; that passes within moments.
    backoff = Backoff()
    for attempt in range(1, 11):
        try:
            store.create_schema()
            lease.create_schema()
            return
        except SQLAlchemyError as exc:
            if attempt == 10:
                raise
            log.warning("creating the schema failed; retrying", extra={"error": repr(exc)})
            time.sleep(backoff.next_delay())


def main() -> None:
    """Console script entry point: run until SIGTERM or SIGINT, then exit 0."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing(settings, "command-relay")
    claim_metrics_dir(settings.metrics_dir / "command", "relay")
    # Imported once the directory is claimed: prometheus_client picks its storage on import.
    from command_service.http.metrics import RelayMetrics

    engine = create_relay_engine(settings)
    store = EventStore(engine)
    lease = RelayLease(engine, settings.kafka_topic, new_owner_id(), settings.relay_lease_seconds)
    relay = Relay(settings, store, lease, observer=RelayMetrics(settings.kafka_topic))

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        # Only a flag: a signal handler must not take locks the interrupted code may hold.
        relay.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("relay starting", extra={"topic": settings.kafka_topic, "owner": lease.owner})
    try:
        create_schema(store, lease)
        relay.run()
    except Exception:
        # A bug, not an outage (those are retried): exit non-zero so a supervisor restarts us;
        # the lease is left to expire.
        log.exception("relay crashed", extra={"topic": settings.kafka_topic})
        raise SystemExit(1) from None
    finally:
        engine.dispose()
    log.info("relay stopped", extra={"topic": settings.kafka_topic})
