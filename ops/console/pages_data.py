"""Data pages: a stream's timeline, state at a version and diff; orders; customers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, render_template, request

from ops.console.charts import line_chart
from ops.console.context import console
from ops.console.kafka_partition import partition_of
from ops.console.page_params import IDENTIFIER, choice_arg, id_arg, int_arg
from ops.console.service_client import ServiceError
from ops.console.state_diff import diff, disagreements
from shared.contract.principal import READ_ALL
from shared.http.auth import requires

data_pages = Blueprint("data", __name__)
ACCOUNT_PREFIX = "account:"
STATUSES = ("", "PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")


@data_pages.get("/streams/<stream_id>")
@requires(READ_ALL)
def stream(stream_id: str) -> str:
    parts = console()
    _check_id(stream_id)
    is_account = stream_id.startswith(ACCOUNT_PREFIX)
    entity = stream_id.removeprefix(ACCOUNT_PREFIX)
    base = f"/accounts/{entity}" if is_account else f"/orders/{entity}"
    try:
        events = parts.command_api.get_json(f"{base}/events")["events"]
    except ServiceError as exc:
        abort(404 if exc.status == 404 else 502, description=f"{stream_id}: {exc.detail}")
    latest = len(events)
    version = int_arg("version", latest, 1, latest) or latest
    compare = int_arg("compare", None, 1, latest)
    state = _state(base, version)
    changes = diff(_state(base, compare), state) if compare else None
    read_view, read_error = _read_view(base)
    partitions = _partition_count()
    messages = _kafka_messages(base, events)
    return render_template(
        "stream.html",
        stream_id=stream_id,
        is_account=is_account,
        entity=entity,
        events=events,
        messages=messages,
        partition=partition_of(stream_id, partitions) if partitions else None,
        version=version,
        compare=compare,
        latest=latest,
        state=state,
        changes=changes,
        read_view=read_view,
        read_error=read_error,
        disagreements=disagreements(_state(base, latest), read_view) if read_view else [],
    )


@data_pages.get("/orders")
@requires(READ_ALL)
def orders() -> str:
    params = {
        "status": choice_arg("status", STATUSES) or None,
        "customer_id": id_arg("customer_id"),
        "cursor": request.args.get("cursor") or None,
        "limit": 50,
    }
    try:
        page = console().query_api.get_json("/orders", params)
    except ServiceError as exc:
        abort(400 if exc.status == 400 else 502, description=exc.detail)
    next_args = {**request.args.to_dict(), "cursor": page["next_cursor"]}
    return render_template(
        "orders.html",
        orders=page["orders"],
        next_args=next_args if page["next_cursor"] else None,
        args=request.args,
        statuses=STATUSES,
    )


@data_pages.get("/customers/<customer_id>")
@requires(READ_ALL)
def customer(customer_id: str) -> str:
    api = console().query_api
    _check_id(customer_id)
    try:
        summary = api.get_json(f"/customers/{customer_id}")
    except ServiceError as exc:
        abort(404 if exc.status in (400, 404) else 502, description=exc.detail)
    orders_page = _or_none(lambda: api.get_json(f"/customers/{customer_id}/orders", {"limit": 50}))
    statement = _or_none(lambda: api.get_json(f"/accounts/{customer_id}/statement", {"limit": 500}))
    lines = (statement or {}).get("lines", [])
    chart = line_chart(
        [float(n) for n in range(len(lines))],
        [line["balance_cents"] / 100 for line in lines],
        "",
        ("first movement", "latest"),
    )
    return render_template(
        "customer.html",
        customer_id=customer_id,
        summary=summary,
        orders=(orders_page or {}).get("orders", []),
        lines=lines,
        chart=chart,
    )


def _check_id(identifier: str) -> None:
    """Ids go into the APIs' paths: only the characters an id can have, so none can add a
    query string or a path segment."""
    if not IDENTIFIER.match(identifier):
        abort(404, description=f"No stream or customer can have the id {identifier[:80]!r}.")


def _state(base: str, version: int) -> dict[str, Any]:
    try:
        state: dict[str, Any] = console().command_api.get_json(base, {"as_of_version": version})
    except ServiceError as exc:
        abort(404 if exc.status in (400, 404) else 502, description=exc.detail)
    return state


def _read_view(base: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        view: dict[str, Any] = console().query_api.get_json(base)
    except ServiceError as exc:
        return None, exc.detail
    return view, None


def _kafka_messages(base: str, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per event id: its message's partition and offset as the projector recorded them, or why
    they are not known ("pending": not projected yet; "rebuilt": applied from the log)."""
    try:
        found = console().query_api.get_json(f"{base}/kafka-messages")
    except ServiceError as exc:
        if exc.status == 404:  # the stream is not in the read model yet
            return {e["event_id"]: {"state": "pending"} for e in events}
        return {e["event_id"]: {"state": "error", "detail": exc.detail} for e in events}
    recorded = {m["event_id"]: m for m in found["messages"]}
    messages: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["event_id"] in recorded:
            messages[e["event_id"]] = {"state": "known", **recorded[e["event_id"]]}
        else:
            state = "rebuilt" if e["version"] <= found["version"] else "pending"
            messages[e["event_id"]] = {"state": state}
    return messages


def _partition_count() -> int | None:
    report = _or_none(lambda: console().query_api.get_json("/projector/status"))
    partitions = ((report or {}).get("projector") or {}).get("partitions") or []
    return len(partitions) or None


def _or_none(call: Any) -> Any:
    try:
        return call()
    except ServiceError:
        return None
