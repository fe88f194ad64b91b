"""`command-relay`: the outbox relay process, run until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from command_service.adapters.event_store import EventStore
from command_service.outbox.lease import RelayLease, new_owner_id
from command_service.outbox.relay import Relay, create_relay_engine
from shared.infra.config import Settings
from shared.infra.metrics_dir import claim_metrics_dir
from shared.infra.schema_startup import create_schema_when_reachable
from shared.infra.structured_logging import configure_logging
from shared.infra.tracing import configure_tracing

log = logging.getLogger("command_service.relay")


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

    def create_schema() -> None:
        store.create_schema()
        lease.create_schema()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("relay starting", extra={"topic": settings.kafka_topic, "owner": lease.owner})
    try:
        if create_schema_when_reachable(create_schema, lambda: relay.stopping):
            relay.run()
    except Exception:
        # A bug, not an outage (those are retried): exit non-zero so a supervisor restarts us;
        # the lease is left to expire.
        log.exception("relay crashed", extra={"topic": settings.kafka_topic})
        raise SystemExit(1) from None
    finally:
        engine.dispose()
    log.info("relay stopped", extra={"topic": settings.kafka_topic})
