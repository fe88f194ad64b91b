"""Pipeline pages: overview (health and lag), the event log, search, parked events."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ops.console.charts import line_chart
from ops.console.context import console
from ops.console.page_params import choice_arg, id_arg, int_arg, text_arg, time_arg
from ops.console.search import EventFilter
from ops.console.service_client import ServiceError
from ops.console.sign_in import user_token
from shared.contract.principal import ADMIN, READ_ALL
from shared.http.auth import requires

pipeline_pages = Blueprint("pipeline", __name__)
PAGE_SIZE = 50
MAX_REASON = 500


@pipeline_pages.get("/")
@requires(READ_ALL)
def overview() -> str:
    parts = console()
    projector, projector_error = _try(lambda: parts.query_api.get_json("/projector/status"))
    latest = parts.sampler.latest
    gauges = latest.gauges if latest else {}
    points = parts.sampler.points()
    xs = [p.at for p in points]
    labels = (_clock(xs[0]), _clock(xs[-1])) if xs else ("", "")
    return render_template(
        "overview.html",
        head=_single(gauges, "event_log_head_position"),
        relays=_relays(gauges),
        projector=projector,
        projector_error=projector_error,
        sampler_error=parts.sampler.error,
        index=parts.indexer.progress,
        rate_chart=line_chart(xs, [p.rate for p in points], "cmd/s", labels),
        p99_chart=line_chart(xs, [p.p99_ms or 0.0 for p in points], "ms", labels),
        last_rate=points[-1] if points else None,
        sampled_at=_clock(latest.at) if latest else None,
    )


@pipeline_pages.get("/events")
@requires(READ_ALL)
def event_log() -> str:
    parts = console()
    filters = EventFilter(
        event_type=id_arg("type"),
        stream_id=id_arg("stream"),
        event_id=id_arg("event"),
        since=time_arg("since"),
        until=time_arg("until"),
        newest_first=choice_arg("order", ("newest", "oldest")) == "newest",
    )
    cursor = int_arg("cursor", None, 0, 2**63 - 1)
    events = parts.index.page(filters, cursor, PAGE_SIZE)
    next_args = None
    if len(events) == PAGE_SIZE:
        next_args = {**request.args.to_dict(), "cursor": events[-1].position}
    return render_template(
        "events.html",
        events=events,
        types=parts.index.event_types(),
        args=request.args,
        next_args=next_args,
        index=parts.indexer.progress,
    )


@pipeline_pages.get("/search")
@requires(READ_ALL)
def search() -> str:
    parts = console()
    query = text_arg("q", 200)
    results = parts.index.search(query, 100) if query else []
    return render_template(
        "search.html", query=query, results=results, index=parts.indexer.progress
    )


@pipeline_pages.get("/parked")
@requires(READ_ALL)
def parked() -> str:
    parts = console()
    after = int_arg("after", 0, 0, 2**62)
    page, error = _try(lambda: parts.query_api.get_json("/parked", {"after": after, "limit": 50}))
    actions, _ = _try(lambda: parts.query_api.get_json("/parked/actions", {"limit": 20}))
    return render_template(
        "parked.html", page=page, error=error, actions=(actions or {}).get("actions", [])
    )


@pipeline_pages.post("/parked/<int:parked_id>/<any(retry, discard):action>")
@requires(ADMIN)
def parked_action(parked_id: int, action: str) -> BaseResponse:
    reason = request.form.get("reason", "").strip()
    if len(reason) > MAX_REASON:
        flash(f"reason: at most {MAX_REASON} characters.", "error")
        return redirect(url_for("pipeline.parked"))
    body = {"reason": reason} if reason else {}
    try:
        result = console().query_api.post_json(f"/parked/{parked_id}/{action}", body, user_token())
    except ServiceError as exc:
        flash(f"{action.capitalize()} of parked event {parked_id} refused: {exc.detail}", "error")
    else:
        flash(f"Parked event {parked_id}: {result['outcome']}.", "ok")
    return redirect(url_for("pipeline.parked"))


def _try(call: Any) -> tuple[Any, str | None]:
    try:
        return call(), None
    except ServiceError as exc:
        return None, exc.detail


def _single(gauges: dict[str, list[tuple[dict[str, str], float]]], name: str) -> int | None:
    samples = gauges.get(name) or []
    return int(samples[0][1]) if samples else None


def _relays(gauges: dict[str, list[tuple[dict[str, str], float]]]) -> list[dict[str, Any]]:
    """Per topic: published position, lag, lease holder and whether its lease is current."""
    lag = {labels["topic"]: value for labels, value in gauges.get("relay_lag_events", [])}
    leases = {
        labels["topic"]: (labels["owner"], value)
        for labels, value in gauges.get("relay_lease_expires_timestamp_seconds", [])
    }
    relays = []
    for labels, position in gauges.get("relay_published_position", []):
        topic = labels["topic"]
        owner, expires = leases.get(topic, (None, 0.0))
        relays.append(
            {
                "topic": topic,
                "position": int(position),
                "lag": int(lag.get(topic, 0)),
                "owner": owner,
                "active": expires > time.time(),
            }
        )
    return relays


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at))
