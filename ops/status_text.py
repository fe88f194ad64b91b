"""The pipeline status as aligned text for a terminal (`orders-admin status` without --json)."""

from __future__ import annotations

from ops.pipeline_status import (
    EventLogStatus,
    KafkaStatus,
    PipelineStatus,
    ProjectorStatus,
    RelayStatus,
)


def render_status(status: PipelineStatus) -> str:
    """One section per stage (event log and relay, Kafka, projector), blank-line separated."""
    sections = (
        _event_log_lines(status.event_log, status.relay),
        _kafka_lines(status.kafka),
        _projector_lines(status.projector, status.kafka),
    )
    return "\n\n".join("\n".join(lines) for lines in sections)


def _event_log_lines(log: EventLogStatus, relay: RelayStatus) -> list[str]:
    lines = [f"event log   {log.url}"]
    if log.state == "missing":
        return [*lines, "  does not exist yet (no command was accepted)"]
    if log.state == "error":
        return [*lines, f"  unreadable: {log.error}"]
    lines.append(_field("head position", log.head_position))
    lines.append(_field("relay published", f"{relay.published_position} (lag {relay.lag})"))
    if relay.lease_owner is None:
        lease = "free"
    else:
        held = "active" if relay.lease_active else "expired"
        lease = f"{relay.lease_owner} until {relay.lease_expires_at} ({held})"
    lines.append(_field("relay lease", lease))
    return lines


def _kafka_lines(kafka: KafkaStatus) -> list[str]:
    lines = [f"kafka       {kafka.bootstrap_servers}, topic {kafka.topic}"]
    if not kafka.reachable:
        return [*lines, f"  unreachable: {kafka.error}"]
    if not kafka.topic_exists:
        return [*lines, "  the topic does not exist yet"]
    ends = ", ".join(f"{e.partition}: {e.end_offset}" for e in kafka.end_offsets)
    total = sum(e.end_offset for e in kafka.end_offsets)
    return [*lines, _field("end offsets", f"{ends} (total {total})")]


def _projector_lines(projector: ProjectorStatus, kafka: KafkaStatus) -> list[str]:
    lines = [f"projector   {projector.read_model_url}"]
    if projector.state == "missing":
        return [*lines, "  the read model does not exist yet (no projector or rebuild ran)"]
    if projector.state == "error":
        return [*lines, f"  unreadable: {projector.error}"]
    if projector.partitions:
        lines.append("  partition  next offset  end offset      lag  updated at")
        for row in projector.partitions:
            lines.append(
                f"  {row.partition:>9}  {_or_dash(row.next_offset):>11}  "
                f"{_or_dash(row.end_offset):>10}  {_or_dash(row.lag):>7}  "
                f"{_or_dash(row.updated_at)}"
            )
    else:
        lines.append("  no positions stored for this topic")
    total_lag: object = projector.total_lag
    if total_lag is None:
        total_lag = "unknown (Kafka unreachable)" if not kafka.reachable else "unknown"
    lines.append(_field("total lag", total_lag))
    lines.append(_field("parked events", projector.parked_events))
    return lines


def _field(name: str, value: object) -> str:
    return f"  {name:<18}{value}"


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)
