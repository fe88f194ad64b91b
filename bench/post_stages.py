"""Where a POST /orders spends its CPU: the request cut into stages, exclusive µs per stage.

In-process, one thread, the real command API app (create_app, AUTH_MODE=dev, a real SQLite
event log in a temporary folder at the service's default synchronous=FULL), one repeated
admin token (the cached case, each client's normal one), the Flask test client, no
Idempotency-Key (the idempotency row is the decorator's own check on that path).

Method: in this benchmark's app only, each stage's function is replaced by a timed wrapper
(module attributes the request path looks up at call time, the app's hook lists and view
table, the store's and backend's methods, the cell of the idempotency wrapper that holds the
route). A wrapper charges the CPU time (time.thread_time_ns, this thread's, so other
processes on the shared machine do not count) and wall time since the last switch to the
stage that was running, then runs its own stage; on return the caller's stage resumes. So
every nanosecond of a request is charged to exactly one stage (exclusive time, nested stages
not counted twice), and the stages add up to the request:

- test client: outside app.wsgi_app (building the WSGI environ, reading the response): the
  bench's own cost, not the service's;
- Flask/Werkzeug: inside app.wsgi_app but in none of the stages below (request and response
  objects, routing, contexts, calling the hooks), i.e. the total minus the rest;
- our stages: the hooks (correlation id, auth, security headers, metrics: the after_request
  recorder and the store's on_appended counter), the idempotency decorator, the route's own
  code, JSON parse, validation, the application service, decide, envelope building
  (new_events + encode), the append in five parts (serialization before the lock, BEGIN
  IMMEDIATE, version check + INSERT, COMMIT with its fsync, and the rest: pool checkout,
  write lock, bookkeeping) and the response rendering.

Each wrapped call costs two clock reads per switch, split between the stages on either side:
the cost of a wrapped call is calibrated and reported, and instrumented requests are
interleaved in blocks with plain ones, whose CPU time is the uninstrumented total.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from flask import Flask

import command_service.application.orders as application_orders
import command_service.domain.order as domain_order
import command_service.http.orders as http_orders
import shared.infra.write_lock as infra_write_lock
from bench.auth import AUTH_ENV, admin_token
from bench.common import Result, base_parser, percentiles, work_dir
from bench.workload import place_order_json
from command_service.http.app import create_app
from shared.infra.config import Settings

OUTSIDE = "test_client"
# Stage key -> label, in request order.
STAGES = {
    OUTSIDE: "test client (bench only: environ in, response out)",
    "framework": "Flask/Werkzeug (total minus the rest)",
    "correlation": "correlation id hooks",
    "auth": "auth hook (install_auth, cached token)",
    "idempotency": "idempotency decorator (no key)",
    "route": "route code (PlaceOrder, prices, command_context)",
    "json_parse": "JSON body parse (read_json_body)",
    "validation": "validation (load_or_raise: PlaceOrder shortcut, else marshmallow)",
    "application": "OrderService.place_order (checks, fingerprint, result)",
    "decide": "decide (domain)",
    "envelopes": "envelope building (new_events + encode)",
    "append_serialize": "append: serialization before the lock",
    "append_begin": "append: BEGIN IMMEDIATE",
    "append_insert": "append: version check + INSERT",
    "append_commit": "append: COMMIT (WAL write + fsync)",
    "append_rest": "append: rest (pool checkout, write lock, bookkeeping)",
    "metrics": "metrics (after_request recorder, on_appended)",
    "response": "response rendering (_placed_response, orjson)",
    "security_headers": "security headers hook",
}
APPEND_STAGES = tuple(s for s in STAGES if s.startswith("append"))


class StageClock:
    """Charges this thread's CPU time and wall time to the stage that is running."""

    def __init__(self) -> None:
        self.cpu: dict[str, int] = {}
        self.wall: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.switches_in: dict[str, int] = {}  # the clock reads that charged a stage
        self.stack: list[str] = []
        self.current = OUTSIDE
        self.cpu_mark = self.wall_mark = 0

    def begin(self, stage: str) -> None:
        self.cpu, self.wall, self.calls, self.switches_in, self.stack = {}, {}, {}, {}, []
        self.current = stage
        self.wall_mark = time.perf_counter_ns()
        self.cpu_mark = time.thread_time_ns()

    def switch(self, to: str) -> None:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        current = self.current
        self.cpu[current] = self.cpu.get(current, 0) + cpu - self.cpu_mark
        self.wall[current] = self.wall.get(current, 0) + wall - self.wall_mark
        self.switches_in[to] = self.switches_in.get(to, 0) + 1
        self.current = to
        self.cpu_mark, self.wall_mark = cpu, wall

    def end(self) -> None:
        self.switch(self.current)

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function`, its time (minus the stages it calls) charged to `stage`."""

        @functools.wraps(function)  # keeps the view's auth_policy too
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.calls[stage] = self.calls.get(stage, 0) + 1
            self.stack.append(self.current)
            self.switch(stage)
            try:
                return function(*args, **kwargs)
            finally:
                self.switch(self.stack.pop())

        return timed


def _hook_index(hooks: list[Callable[..., Any]], qualname_prefix: str) -> int:
    for index, hook in enumerate(hooks):
        if getattr(hook, "__qualname__", "").startswith(qualname_prefix):
            return index
    raise SystemExit(f"no {qualname_prefix} hook in the command API app")


@contextmanager
def _replaced_item(items: list[Any], index: int, value: Any) -> Iterator[None]:
    original = items[index]
    items[index] = value
    try:
        yield
    finally:
        items[index] = original


@contextmanager
def _replaced_cell(function: Any, name: str, value: Any) -> Iterator[None]:
    cell = function.__closure__[function.__code__.co_freevars.index(name)]
    original = cell.cell_contents
    cell.cell_contents = value
    try:
        yield
    finally:
        cell.cell_contents = original


@contextmanager
def instrumented(app: Flask, clock: StageClock) -> Iterator[None]:
    """Every stage of POST /orders timed by `clock`, in this app (and process) only."""
    wrap = clock.wrap
    store = app.extensions["event_store"]
    service = app.extensions["order_service"]
    before = app.before_request_funcs[None]
    after = app.after_request_funcs[None]
    endpoint = "orders.place_order"
    idempotent_view = app.view_functions[endpoint]
    real_driver_sql = infra_write_lock.execute_on_driver
    begin_sql = wrap("append_begin", real_driver_sql)
    commit_sql = wrap("append_commit", real_driver_sql)

    def driver_sql(driver: Any, statement: str) -> None:
        if statement.startswith("BEGIN"):
            return begin_sql(driver, statement)  # type: ignore[no-any-return]
        if statement == "COMMIT":
            return commit_sql(driver, statement)  # type: ignore[no-any-return]
        return real_driver_sql(driver, statement)

    hooks = [
        (before, "install_correlation_ids.", "correlation"),
        (before, "install_auth.", "auth"),
        (after, "install_correlation_ids.", "correlation"),
        (after, "install_security_headers.", "security_headers"),
        (after, "install_http_metrics.", "metrics"),
    ]
    with ExitStack() as stack:
        for hook_list, prefix, stage in hooks:
            index = _hook_index(hook_list, prefix)
            stack.enter_context(_replaced_item(hook_list, index, wrap(stage, hook_list[index])))
        stack.enter_context(mock.patch.object(app, "wsgi_app", wrap("framework", app.wsgi_app)))
        stack.enter_context(
            mock.patch.dict(app.view_functions, {endpoint: wrap("idempotency", idempotent_view)})
        )
        route = idempotent_view.__wrapped__
        stack.enter_context(_replaced_cell(idempotent_view, "view", wrap("route", route)))
        patches: list[tuple[Any, str, str]] = [
            (http_orders, "read_json_body", "json_parse"),
            (http_orders, "load_or_raise", "validation"),
            (http_orders, "command_context", "route"),
            (http_orders, "_placed_response", "response"),
            (service, "place_order", "application"),
            (domain_order, "decide", "decide"),
            (application_orders, "new_events", "envelopes"),
            (store, "append", "append_rest"),
            (store.backend, "prepare", "append_serialize"),
            (store.backend, "insert_events", "append_insert"),
            (store, "on_appended", "metrics"),
        ]
        for target, attribute, stage in patches:
            timed = wrap(stage, getattr(target, attribute))
            stack.enter_context(mock.patch.object(target, attribute, timed))
        stack.enter_context(mock.patch.object(infra_write_lock, "execute_on_driver", driver_sql))
        yield


def wrapped_call_cost_ns(calls: int = 100_000) -> float:
    """CPU ns a wrapped call adds over a plain one (two switches: four clock reads)."""

    def noop() -> None:
        return None

    clock = StageClock()
    timed = clock.wrap("x", noop)
    clock.begin(OUTSIDE)
    started = time.thread_time_ns()
    for _ in range(calls):
        timed()
    wrapped = time.thread_time_ns() - started
    started = time.thread_time_ns()
    for _ in range(calls):
        noop()
    plain = time.thread_time_ns() - started
    return (wrapped - plain) / calls


def measure(
    app: Flask, token: str, body: str, requests: int, warmup: int, block: int
) -> dict[str, Any]:
    """`requests` instrumented POSTs and as many plain ones, in alternating blocks."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    clock = StageClock()
    cpu_ns: dict[str, list[int]] = {stage: [] for stage in STAGES}
    wall_ns: dict[str, list[int]] = {stage: [] for stage in STAGES}
    calls: dict[str, int] = dict.fromkeys(STAGES, 0)
    switches: dict[str, int] = dict.fromkeys(STAGES, 0)
    total_cpu: list[float] = []
    total_wall: list[float] = []
    plain_cpu: list[float] = []
    plain_wall: list[float] = []

    def post() -> None:
        response = client.post(
            "/orders", data=body, content_type="application/json", headers=headers
        )
        if response.status_code != 201:
            raise RuntimeError(f"{response.status_code} {response.get_data(True)}")

    def instrumented_post() -> None:
        clock.begin(OUTSIDE)
        post()
        clock.end()
        unknown = set(clock.cpu) - set(STAGES)
        if unknown:
            raise RuntimeError(f"stages without a label: {unknown}")
        for stage in STAGES:
            cpu_ns[stage].append(clock.cpu.get(stage, 0))
            wall_ns[stage].append(clock.wall.get(stage, 0))
            calls[stage] += clock.calls.get(stage, 0)
            switches[stage] += clock.switches_in.get(stage, 0)
        total_cpu.append(sum(clock.cpu.values()) / 1000)
        total_wall.append(sum(clock.wall.values()) / 1000)

    def plain_post() -> None:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        post()
        plain_wall.append((time.perf_counter_ns() - wall) / 1000)
        plain_cpu.append((time.thread_time_ns() - cpu) / 1000)

    for _ in range(warmup):  # statement caches, the token cache, the metrics series
        post()
    done = 0
    while done < requests:
        size = min(block, requests - done)
        with instrumented(app, clock):
            for _ in range(size):
                instrumented_post()
        for _ in range(size):
            plain_post()
        done += size
    missing = [s for s in STAGES if s != OUTSIDE and calls[s] == 0]
    if missing:
        raise RuntimeError(f"stages never entered (not on the request path?): {missing}")
    outcome = summarize(cpu_ns, wall_ns, calls, requests, total_cpu, total_wall)
    outcome["plain_cpu_us_mean"] = round(sum(plain_cpu) / len(plain_cpu), 1)
    outcome["plain_cpu_us"] = percentiles(plain_cpu)
    outcome["plain_wall_us_mean"] = round(sum(plain_wall) / len(plain_wall), 1)
    outcome["plain_wall_us"] = percentiles(plain_wall)
    correct_for_clock(outcome, switches, requests, wrapped_call_cost_ns())
    return outcome


def correct_for_clock(
    outcome: dict[str, Any], switches: dict[str, int], requests: int, cost_ns: float
) -> None:
    """A switch costs half a wrapped call; each is charged to the stage it switches to (its
    clock reads and bookkeeping fall about evenly either side of the reading), so each stage's
    corrected CPU is its measured CPU minus its switches times that cost."""
    per_switch_us = cost_ns / 2 / 1000
    corrected_total = 0.0
    for stage, row in outcome["stages"].items():
        row["switches_per_post"] = round(switches[stage] / requests, 2)
        row["cpu_us_mean_corrected"] = round(
            max(0.0, row["cpu_us_mean"] - row["switches_per_post"] * per_switch_us), 2
        )
        corrected_total += row["cpu_us_mean_corrected"]
    for row in outcome["stages"].values():
        row["share_pct_corrected"] = round(100 * row["cpu_us_mean_corrected"] / corrected_total, 1)
    outcome["wrapped_call_cost_ns"] = round(cost_ns, 1)
    outcome["cpu_us_mean_corrected"] = round(corrected_total, 1)
    outcome["instrumentation_cpu_us_per_post_estimate"] = round(
        outcome["instrumented_cpu_us_mean"] - corrected_total, 1
    )


def summarize(
    cpu_ns: dict[str, list[int]],
    wall_ns: dict[str, list[int]],
    calls: dict[str, int],
    requests: int,
    total_cpu: list[float],
    total_wall: list[float],
) -> dict[str, Any]:
    total_mean = sum(total_cpu) / len(total_cpu)
    stages = {}
    for stage, label in STAGES.items():
        cpu_us = [ns / 1000 for ns in cpu_ns[stage]]
        mean = sum(cpu_us) / requests
        stages[stage] = {
            "label": label,
            "cpu_us_mean": round(mean, 2),
            "cpu_us": percentiles(cpu_us),
            "share_pct": round(100 * mean / total_mean, 1),
            "wall_us_mean": round(sum(wall_ns[stage]) / 1000 / requests, 2),
            "calls_per_post": round(calls[stage] / requests, 2),
        }
    append_cpu = sum(stages[s]["cpu_us_mean"] for s in APPEND_STAGES)
    append_wall = sum(stages[s]["wall_us_mean"] for s in APPEND_STAGES)
    ours = sum(v["cpu_us_mean"] for k, v in stages.items() if k not in (OUTSIDE, "framework"))
    return {
        "requests": requests,
        "stages": stages,
        "append_cpu_us_mean": round(append_cpu, 1),
        "append_wall_us_mean": round(append_wall, 1),
        "our_code_cpu_us_mean": round(ours, 1),
        "instrumented_cpu_us_mean": round(total_mean, 1),
        "instrumented_cpu_us": percentiles(total_cpu),
        "instrumented_wall_us_mean": round(sum(total_wall) / len(total_wall), 1),
        "wrapped_calls_per_post": round(sum(calls.values()) / requests, 1),
    }


def print_table(outcome: dict[str, Any]) -> None:
    width = max(len(label) for label in STAGES.values())
    print(f"  {'stage':<{width}}  CPU µs/POST  share  corrected  share  wall µs/POST  calls/POST")
    for row in outcome["stages"].values():
        print(
            f"  {row['label']:<{width}}  {row['cpu_us_mean']:>11.1f}  {row['share_pct']:>4.1f}%"
            f"  {row['cpu_us_mean_corrected']:>9.1f}  {row['share_pct_corrected']:>4.1f}%"
            f"  {row['wall_us_mean']:>12.1f}  {row['calls_per_post']:>10}"
        )
    print(
        f"  {'total (instrumented)':<{width}}  {outcome['instrumented_cpu_us_mean']:>11.1f}  "
        f"100.0%  {outcome['cpu_us_mean_corrected']:>9.1f}  100.0%  "
        f"{outcome['instrumented_wall_us_mean']:>12.1f}"
    )
    print(
        f"  {'total, plain requests (no wrappers)':<{width}}  "
        f"{outcome['plain_cpu_us_mean']:>11.1f}  {'':>5}  {'':>9}  {'':>5}  "
        f"{outcome['plain_wall_us_mean']:>12.1f}"
    )
    print(
        f"  append (all five parts): {outcome['append_cpu_us_mean']} µs CPU, "
        f"{outcome['append_wall_us_mean']} µs wall per POST; our code: "
        f"{outcome['our_code_cpu_us_mean']} µs CPU"
    )


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    args = parser.parse_args(argv)
    requests, warmup, block = (300, 50, 50) if args.quick else (2000, 100, 100)
    result = Result(
        "post_stages",
        {
            "requests": requests,
            "warmup": warmup,
            "block": block,
            "request": "POST /orders, new order, 1-3 lines, repeated admin token, no "
            "Idempotency-Key, Flask test client, SQLite synchronous=FULL",
            "method": "timed wrappers on each stage's function (bench only), exclusive "
            "thread CPU time and wall time per stage; instrumented and plain requests "
            f"alternating in blocks of {block}",
        },
        args.quick,
    )
    body = place_order_json()
    with work_dir("post-stages", args.keep) as folder:
        settings = Settings.from_env(
            {**AUTH_ENV, "DATA_DIR": str(folder / "data"), "LOG_LEVEL": "WARNING"}
        )
        app = create_app(settings)
        token = admin_token(settings.data_dir)
        outcome = measure(app, token, body, requests, warmup, block)
    result.data["results"]["post_orders"] = outcome
    print_table(outcome)
    result.note(
        f"instrumentation: {outcome['wrapped_calls_per_post']} wrapped calls per POST at "
        f"~{outcome['wrapped_call_cost_ns']} ns CPU each = ~"
        f"{outcome['instrumentation_cpu_us_per_post_estimate']} µs per POST, spread over the "
        f"stages; instrumented {outcome['instrumented_cpu_us_mean']} µs vs plain "
        f"{outcome['plain_cpu_us_mean']} µs CPU per POST"
    )
    result.save()


if __name__ == "__main__":
    main()
