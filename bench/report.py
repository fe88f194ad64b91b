"""Regenerate docs/benchmarks.md from bench/results/*.json (and the hand-written
bench/analysis.md), so the published tables are always the ones the last run measured.

    python -m bench.report [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, RESULTS_DIR

ORDER = (
    "append",
    "concurrent_append",
    "http_commands",
    "pipeline_http",
    "freshness",
    "relay",
    "projector",
    "aggregate_load",
    "auth_cost",
    "post_stages",
    "cluster_scaling",
)
TITLES = {
    "append": "1. Event store append (in-process, SQLite WAL, synchronous=FULL)",
    "concurrent_append": "1b. Concurrent appenders (2 processes x 4 threads): group commit vs raw",
    "http_commands": "2. HTTP commands under gunicorn vs a trivial endpoint and a peer app",
    "pipeline_http": "2b. Whole pipeline running: POST /orders vs GET /healthz (wrk)",
    "freshness": "3. Freshness: 201 on the command API to visible on the query API",
    "relay": "4. Relay publish rate from a backlog vs a raw producer",
    "projector": "5. Projector apply rate, rebuild rate, read model size",
    "aggregate_load": "6. Aggregate load time by stream length, with and without snapshots",
    "auth_cost": "7. Authentication cost: token verification, POST /orders with and without it",
    "post_stages": "7b. Where POST /orders spends its CPU, stage by stage (in-process)",
    "cluster_scaling": "9. Scale-out shape: command hosts and projectors on PostgreSQL, 3 brokers",
}
Json = dict[str, Any]


def table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    headers = list(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def _pct(d: Json, key: str) -> Any:
    return d.get(key, "")


def machine_section(results: dict[str, Json]) -> str:
    first = next(iter(results.values()))["machine"]
    rows = [
        ("CPU", f"{first['cpu_model']}, {first['cores']} cores"),
        ("RAM", f"{first['ram_gib']} GiB"),
        ("OS", first["os"]),
        ("Python / SQLite", f"{first['python']} / {first['sqlite']}"),
        ("commit", f"{first['commit']} (each run's own: below)"),
    ]
    runs = [
        (
            name,
            r["machine"]["date"],
            "quick" if r["params"].get("quick") else "",
            r.get("seconds", ""),
            " / ".join(str(x) for x in r["machine"]["loadavg_at_start"]),
            " / ".join(str(x) for x in r["machine"].get("loadavg_at_end", [])),
            r["machine"].get("commit", ""),
        )
        for name, r in results.items()
    ]
    return "\n\n".join(
        [
            table(("machine", ""), rows),
            "Each benchmark's run (load average 1/5/15 min at its start and end: above ~1 on this "
            "2-core machine, other work was competing for the CPU; every ratio below is measured "
            "side by side in the same run for that reason):",
            table(
                (
                    "benchmark",
                    "date (UTC)",
                    "size",
                    "seconds",
                    "load at start",
                    "load at end",
                    "commit",
                ),
                runs,
            ),
        ]
    )


def targets_section(results: dict[str, Json]) -> str:
    rows = [
        (
            TITLES[name].split(" ", 1)[0] + " " + t["label"],
            t["goal"],
            t["value"],
            "met" if t["met"] else "**MISSED**",
        )
        for name in ORDER
        if name in results
        for t in results[name]["targets"]
    ]
    return table(("target", "goal", "measured", ""), rows)


# The targets table of issue 12, each measured from the results JSON it comes from: what it
# asks for, so a target no benchmark measured shows up as such instead of going missing.
Measured = tuple[str, bool]  # what was measured, as text, and whether the goal is met


def _issue_vs_trivial(r: Json) -> Measured:
    mx, half = r["results"]["max_throughput"], r["results"]["half_max_rate"]
    x, p99 = mx["ratio_command_vs_trivial"], half["latency_ms"]["p99"]
    errors = mx["command_api"]["errors"] + half["errors"]
    text = f"{x}x, {errors:,} errors, p99 {p99} ms at half max ({half['rps']}/s)"
    return text, x >= 0.6 and errors == 0 and p99 < 25


def _issue_vs_peer(r: Json) -> Measured:
    mx = r["results"]["max_throughput"]
    x = mx["ratio_command_vs_peer"]
    text = f"{x}x ({mx['command_api']['rps']:,} vs {mx['peer']['rps']:,} req/s)"
    if r["params"].get("same_durability") is False:
        text += "; the peer's SQLite durability differs from ours"
    return text, x >= 1.5


def _issue_pipeline(r: Json) -> Measured:
    mx = r["results"]["max_throughput"]
    x = mx["ratio_post_vs_healthz"]
    text = f"{x}x ({mx['post_orders']['rps']:,} vs {mx['healthz']['rps']:,} req/s)"
    return text, x >= 0.4


def _issue_append(r: Json) -> Measured:
    ratios = r["results"]["1_event_per_command"]["ratios"]
    raw, es = ratios["ours_vs_raw_sqlite3"], ratios["ours_vs_eventsourcing"]
    return f"{raw}x raw sqlite3, {es}x eventsourcing", raw >= 0.8 and es >= 1.3


def _issue_concurrent(r: Json) -> Measured:
    shape = r["results"]["2x4"]
    x = shape["ratios"]["ours_vs_raw_sqlite3"]
    ours, raw = shape["ours"], shape["raw_sqlite3"]
    text = f"{x}x ({ours['appends_per_s']:,} vs {raw['appends_per_s']:,} appends/s"
    if "mean_batch_size" in ours:
        text += f"; mean batch {ours['mean_batch_size']}"
    return text + ")", x >= 1.5


def _issue_freshness(r: Json) -> Measured:
    runs = [run for run in r["results"]["runs"] if not run.get("search_for_highest_held_rate")]
    parts, met = [], True
    for rate, limit in ((200, 50), (500, 100)):
        run = next((run for run in runs if run["target_rps"] == rate), None)
        if run is None:
            parts.append(f"{rate}/s: not run")
            met = False
            continue
        p99 = run["freshness_api_ms"].get("p99")
        held = run["held"]
        parts.append(f"{rate}/s: p99 {p99} ms{'' if held else ' (rate not held)'}")
        met = met and held and p99 is not None and p99 < limit
    return "; ".join(parts), met


def _issue_relay(r: Json) -> Measured:
    x = r["results"]["ratio_relay_vs_raw"]
    return f"{x}x", x >= 0.8


def _issue_projector(r: Json) -> Measured:
    p = r["results"]["projector"]
    rate = p.get("events_per_s_steady") or p["events_per_s_from_process_start"]
    return f"{rate:,} events/s ({p['events']:,} events)", rate >= 20_000


def _issue_rebuild(r: Json) -> Measured:
    h = r["results"]["rebuild_http"]
    rss = r.get("memory_peak_mib", {}).get("query-rebuild")
    text = f"{h['events_per_s']:,} events/s, peak RSS {rss} MiB, on {h['events']:,} events"
    met = h["events_per_s"] >= 50_000 and rss is not None and rss < 150
    return text, met and h["events"] >= 1_000_000


ISSUE_TARGETS: tuple[tuple[str, str, str, Callable[[Json], Measured]], ...] = (
    (
        "POST /orders vs trivial endpoint, same gunicorn config",
        ">= 0.6x, 0 errors, p99 < 25 ms at half max",
        "http_commands",
        _issue_vs_trivial,
    ),
    (
        "POST /orders vs the eventsourcing + Flask peer app",
        ">= 1.5x",
        "http_commands",
        _issue_vs_peer,
    ),
    (
        "whole pipeline running, POST /orders vs GET /healthz, wrk -c16",
        ">= 0.4x",
        "pipeline_http",
        _issue_pipeline,
    ),
    (
        "in-process append, 1 event/command, one client",
        ">= 0.8x raw sqlite3 and >= 1.3x eventsourcing",
        "append",
        _issue_append,
    ),
    (
        "concurrent appenders (2 processes x 4 threads) with group commit",
        ">= 1.5x the raw single-commit floor",
        "concurrent_append",
        _issue_concurrent,
    ),
    (
        "freshness, 201 to visible on the query API",
        "p99 < 50 ms at 200 commands/s; p99 < 100 ms at 500/s",
        "freshness",
        _issue_freshness,
    ),
    ("relay vs raw producer", ">= 0.8x", "relay", _issue_relay),
    ("projector from Kafka", ">= 20,000 events/s", "projector", _issue_projector),
    (
        "rebuild of 1M events",
        ">= 50,000 events/s, peak RSS < 150 MiB",
        "projector",
        _issue_rebuild,
    ),
)


def _run_of(name: str, r: Json) -> str:
    machine = r["machine"]
    size = "quick, " if r["params"].get("quick") else ""
    load = machine.get("loadavg_at_start", ["?"])[0]
    return f"{name} ({size}{machine['date']}, load {load})"


def issue_targets_section(results: dict[str, Json]) -> str:
    rows = []
    for label, goal, name, measure in ISSUE_TARGETS:
        r = results.get(name)
        if r is None:
            rows.append((label, goal, f"no {name} result", "**NOT MEASURED**", ""))
            continue
        try:
            text, met = measure(r)
        except (KeyError, TypeError, IndexError) as exc:
            text, status = f"not in the {name} result ({exc!r})", "**NOT MEASURED**"
        else:
            status = "met" if met else "**MISSED**"
        rows.append((label, goal, text, status, _run_of(name, r)))
    return table(("target", "goal", "measured", "", "run (size, date UTC, load at start)"), rows)


def append_section(r: Json) -> str:
    res = r["results"]
    parts = []
    for key, label in (
        ("1_event_per_command", "1 event per command"),
        ("10_events_per_command", "10 events per command"),
    ):
        if key not in res:
            continue
        block = res[key]
        rows = [
            (
                name,
                v["events_per_s"],
                v["us_per_command"],
                v["worst_round_events_per_s"],
                v["best_round_events_per_s"],
            )
            for name, v in block.items()
            if name != "ratios"
        ]
        ratios = ", ".join(f"{k.replace('_', ' ')} **{v}x**" for k, v in block["ratios"].items())
        parts.append(
            f"{label}: {ratios}\n\n"
            + table(("variant", "events/s", "µs/command", "worst round", "best round"), rows)
        )
    if "concurrent_appends" in res:
        rows = [
            (
                shape,
                v["events_per_s"],
                v["append_latency_ms"].get("p50"),
                v["append_latency_ms"].get("p95"),
                v["append_latency_ms"].get("p99"),
            )
            for shape, v in res["concurrent_appends"].items()
        ]
        parts.append(
            "Concurrent appenders (ours; processes x threads, gunicorn's default is "
            "2 x 4), latency of one append including the wait for the write lock:\n\n"
            + table(("shape", "events/s", "p50 ms", "p95 ms", "p99 ms"), rows)
        )
    return "\n\n".join(parts)


def concurrent_append_section(r: Json) -> str:
    shape, params = r["results"]["2x4"], r["params"]
    rows = [
        (
            name,
            v["appends_per_s"],
            v["worst_round_appends_per_s"],
            v["best_round_appends_per_s"],
            v["append_latency_ms"].get("p50"),
            v["append_latency_ms"].get("p95"),
            v["append_latency_ms"].get("p99"),
            v.get("transactions", ""),
            v.get("mean_batch_size", ""),
            v.get("largest_batch", ""),
        )
        for name, v in shape.items()
        if isinstance(v, dict) and "appends_per_s" in v
    ]
    by_round = shape.get("ours_vs_raw_sqlite3_by_round")
    spread = f" (round by round: {', '.join(f'{x}x' for x in by_round)})" if by_round else ""
    ratios = ", ".join(
        f"{k.replace('_', ' ')} **{v}x**{spread if k == 'ours_vs_raw_sqlite3' else ''}"
        for k, v in shape["ratios"].items()
    )
    return "\n\n".join(
        [
            f"{params['processes']} processes x {params['threads_per_process']} threads, one "
            f"event per command, each command a new stream; journal_mode={params['journal_mode']},"
            f" synchronous={params['sqlite_synchronous']}, busy timeout "
            f"{params['busy_timeout_ms']} ms on both sides; {params['rounds']} rounds of "
            f"{params['seconds_per_round']} s per variant, interleaved. Raw floor: "
            f"{params['raw_floor']}. {ratios}.",
            table(
                (
                    "variant",
                    "appends/s",
                    "worst round",
                    "best round",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "transactions",
                    "mean batch",
                    "largest batch",
                ),
                rows,
            ),
            "Latency is one append call, the wait for the write lock (or SQLite's busy "
            "handler) and the batch's commit included; transactions and batch sizes are the "
            "EventStore's group-commit counters (requests per transaction). The raw floor's "
            "waiting writers sleep in SQLite's busy handler (1, 2, 5, 10 ... 100 ms between "
            "tries), so it leaves the lock idle at times and its rate swings with scheduling; "
            "ours queues on its own write lock and batches whatever queued behind a commit. "
            "Batches form within a process, so one holds at most that process's threads.",
        ]
    )


def pipeline_http_section(r: Json) -> str:
    mx, params = r["results"]["max_throughput"], r["params"]
    processes = ("command-api", "command-relay", "query-api", "query-projector")
    rows = []
    for name, label in (("post_orders", "POST /orders"), ("healthz", "GET /healthz")):
        v = mx[name]
        median_round = v["latency_ms_by_round"][len(v["latency_ms_by_round"]) // 2]
        cores = v["cores_used"]
        rows.append(
            (
                label,
                v["rps"],
                v["errors"],
                median_round["p50"],
                median_round["p99"],
                v["p99_ms_worst_round"],
                *(cores.get(f"{p}_cores", "") for p in processes),
                cores.get("machine_cores_busy", ""),
            )
        )
    caught_up = mx.get("read_model_caught_up_s_after_last_round")
    return "\n\n".join(
        [
            f"Load generator: {params['load_generator']}, {params['connections']} connections, "
            f"{params['rounds']} rounds of {params['seconds_per_round']} s per endpoint, "
            f"alternating, with {params['processes']} running. POST /orders / GET /healthz = "
            f"**{mx['ratio_post_vs_healthz']}x**. Authentication: {params['auth']}.",
            table(
                (
                    "endpoint",
                    "req/s",
                    "errors",
                    "p50 ms",
                    "p99 ms",
                    "worst-round p99",
                    "command-api cores",
                    "relay cores",
                    "query-api cores",
                    "projector cores",
                    "machine cores busy",
                ),
                rows,
            ),
            f"{mx['orders_placed']:,} orders placed; the read model held all of them "
            + (
                f"{caught_up} s after the last round."
                if caught_up is not None
                else "**not within 120 s** after the last round."
            ),
        ]
    )


def http_section(r: Json) -> str:
    res = r["results"]
    mx = res["max_throughput"]
    rows = []
    for name in ("command_api", "trivial", "peer"):
        if name not in mx:
            continue  # results from before the peer app was measured
        v = mx[name]
        median_round = v["latency_ms_by_round"][len(v["latency_ms_by_round"]) // 2]
        rows.append(
            (
                name,
                v["rps"],
                v["errors"],
                median_round["p50"],
                median_round["p95"],
                median_round["p99"],
                v["p99_ms_worst_round"],
                v["server_cpu_ms_per_request"],
                v["server_cores_used"],
                v["machine_cores_busy"],
            )
        )
    half = res["half_max_rate"]
    lat = half["latency_ms"]
    text = [
        f"Load generator: {r['params']['load_generator'].split(' Copyright')[0]}, "
        f"{r['params']['connections']} "
        f"connections, {r['params']['rounds']} rounds of {r['params']['seconds_per_round']} s "
        f"per endpoint, alternating. Command API / trivial = "
        f"**{mx['ratio_command_vs_trivial']}x**"
        + (
            f"; command API / peer app = **{mx['ratio_command_vs_peer']}x**."
            if "ratio_command_vs_peer" in mx
            else "."
        ),
        table(
            (
                "endpoint",
                "req/s",
                "errors",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "worst-round p99",
                "server CPU ms/request",
                "server cores",
                "machine cores busy",
            ),
            rows,
        ),
        f"At half the command API's maximum ({half['target_rps']}/s target, {half['rps']}/s "
        f"achieved, {r['params']['half_rate_seconds']} s): p50 {lat['p50']} ms, p95 {lat['p95']} "
        f"ms, **p99 {lat['p99']} ms**, max {lat['max']} ms, errors {half['errors']}.",
    ]
    if "peer" in r["params"]:
        sqlite = r["params"].get("peer_sqlite", {})
        text.append(
            f"Peer app: {r['params']['peer']}; its SQLite connection runs journal_mode="
            f"{sqlite.get('journal_mode', '?')}, synchronous={sqlite.get('synchronous', '?')} "
            "(ours: WAL, FULL). It is the same POST /orders (validate, load, decide, save) "
            "written the straightforward way with that library, on the same gunicorn "
            "configuration."
        )
    peer_half = res.get("peer_half_max_rate")
    if peer_half:
        plat = peer_half["latency_ms"]
        text.append(
            f"Peer app at half its maximum ({peer_half['target_rps']}/s target, "
            f"{peer_half['rps']}/s achieved): p50 {plat['p50']} ms, p95 {plat['p95']} ms, "
            f"**p99 {plat['p99']} ms**, max {plat['max']} ms, errors {peer_half['errors']}."
        )
    if "auth" in r["params"]:
        text.append(
            f"Authentication: {r['params']['auth']}. The trivial endpoint is the ceiling of a "
            "Flask endpoint on the same gunicorn configuration, so the ratio includes what "
            "authentication costs; section 7 measures that on its own."
        )
    for label, prof in r.get("profiles", {}).items():
        if "us_per_request_without_profiler" in prof:
            text.append(
                f"{label}: {prof['us_per_request_without_profiler']} µs per request on one "
                "thread, without a server, wall time (the fsync included)."
            )
    return "\n\n".join(text)


def freshness_section(r: Json) -> str:
    rows = []
    for run in r["results"]["runs"]:
        api, row, post = (
            run["freshness_api_ms"],
            run["freshness_read_model_row_ms"],
            run["post_latency_ms"],
        )
        rows.append(
            (
                run["target_rps"],
                run["achieved_rps"],
                "yes" if run["held"] else "no",
                run["errors"],
                ", ".join(f"{k}: {n}" for k, n in run.get("errors_by_kind", {}).items()),
                api.get("p50"),
                api.get("p95"),
                api.get("p99"),
                row.get("p50"),
                row.get("p95"),
                row.get("p99"),
                post.get("p99"),
            )
        )
    highest = r["results"].get("highest_held_rps")
    return "\n\n".join(
        [
            f"Highest rate held: **{highest}/s**" if highest else "No rate was held.",
            table(
                (
                    "target /s",
                    "achieved /s",
                    "held",
                    "errors",
                    "error kinds",
                    "API p50 ms",
                    "API p95",
                    "API p99",
                    "row p50 ms",
                    "row p95",
                    "row p99",
                    "POST p99 ms",
                ),
                rows,
            ),
            "API = until GET /orders/{id}?min_version answered (what a client sees, including "
            "min_version's wait); row = until the order's row was committed in the read model "
            "(polled every 2 ms from outside). Error kinds: `GET 429` is the query API refusing "
            "a ?min_version wait because all its waiting slots are taken; `GET 200` is an "
            "answer that was not yet up to date when the wait ran out.",
        ]
    )


def relay_section(r: Json) -> str:
    res = r["results"]
    relay = res["relay"]
    rows = [
        (f"raw producer, send all + flush (run {n + 1})", v["events_per_s"], v["seconds"])
        for n, v in enumerate(res["raw_producer_send_all"])
    ]
    rows.append(
        (
            "raw producer, 500 per batch, wait for acks",
            res["raw_producer_per_500_batch"]["events_per_s"],
            res["raw_producer_per_500_batch"]["seconds"],
        )
    )
    rows.append(
        (
            "command-relay, steady (after its first checkpoint)",
            relay.get("events_per_s_steady", ""),
            "",
        )
    )
    rows.append(
        (
            "command-relay, from process start",
            relay["events_per_s_from_process_start"],
            relay["seconds_from_process_start"],
        )
    )
    return "\n\n".join(
        [
            f"Backlog {r['params']['backlog_events']:,} events. Relay / raw producer = "
            f"**{res['ratio_relay_vs_raw']}x** (from process start "
            f"{res['ratio_relay_from_start_vs_raw']}x; "
            f"vs the raw producer waiting per batch {res['ratio_relay_vs_raw_per_batch']}x). The "
            f"relay used {relay['relay_cores_used']} cores.",
            table(("publisher", "events/s", "seconds"), rows),
        ]
    )


def projector_section(r: Json) -> str:
    res = r["results"]
    p, h, d = res["projector"], res["rebuild_http"], res["rebuild_in_process"]
    rows = [
        (
            "query-projector from Kafka (steady)",
            p["events"],
            p.get("events_per_s_steady", ""),
            p["projector_cores_used"],
            p["read_model_mib"],
        ),
        (
            "query-projector from Kafka (from process start)",
            p["events"],
            p["events_per_s_from_process_start"],
            "",
            "",
        ),
        (
            "query-rebuild over GET /events",
            h["events"],
            h["events_per_s"],
            f"{h['rebuild_cores_used']} + API {h['command_api_cores_used']}",
            h["read_model_mib"],
        ),
        ("rebuild in-process (no HTTP)", d["events"], d["events_per_s"], "", d["read_model_mib"]),
    ]
    floor = res.get("projection_in_memory_no_database")
    if floor:
        rows.append(
            (
                "parse + project in memory, no database (our pure code's floor)",
                floor["events"],
                floor["events_per_s"],
                "",
                "",
            )
        )
    return "\n\n".join(
        [
            table(("run", "events", "events/s", "cores used", "read model MiB"), rows),
            f"Event log on disk: {res['event_log_mib']} MiB. The projector's read model is larger "
            f"than the rebuilt one: it was written by many small transactions (free pages, WAL), "
            f"the rebuild by one.",
        ]
    )


def aggregate_section(r: Json) -> str:
    rows = [
        (
            v["kind"],
            v["events"],
            v["with_snapshots"]["ms"]["p50"],
            v["with_snapshots"]["ms"]["p95"],
            v["without_snapshots"]["ms"]["p50"],
            v["without_snapshots"]["ms"]["p95"],
            v["speedup_with_snapshots"],
        )
        for v in r["results"]["streams"].values()
    ]
    return (
        f"SNAPSHOT_EVERY={r['params']['snapshot_every']}; the snapshot is the one production "
        "holds (at the last multiple of 100), so 10,099 events means 99 to fold after it.\n\n"
        + table(
            (
                "aggregate",
                "events",
                "with snapshots p50 ms",
                "p95",
                "without p50 ms",
                "p95",
                "speed-up",
            ),
            rows,
        )
    )


def auth_section(r: Json) -> str:
    res = r["results"]
    verify, post = res["verify"], res["post_orders"]
    verify_rows = [
        (
            label,
            v["calls"],
            v["us_mean"],
            v["us"].get("p50"),
            v["us"].get("p95"),
            v["us"].get("p99"),
        )
        for key, label in (
            ("fresh_token", "fresh token (parse, key, ES256 signature, claims; then cached)"),
            ("repeated_token", "repeated token (cache hit)"),
            ("signature_only", "ES256 signature check alone (the floor of a fresh token)"),
        )
        if (v := verify.get(key))
    ]
    post_rows = [
        (
            v["label"],
            v["cpu_us"].get("p50"),
            v["cpu_us_mean"],
            v["wall_us"].get("p50"),
            v["auth_hook_cpu_us"].get("p50"),
            v["auth_hook_cpu_us_mean"],
            v["auth_hook_cpu_us"].get("p99"),
            f"{v['auth_hook_share_of_cpu_pct']}%",
            v["cpu_us_mean_without_auth_hook"],
        )
        for v in post.values()
    ]
    stub, cached = post["no_verification"], post["repeated_token"]

    def cost(key: str) -> str:
        v = post[key]
        share = round(100 * v["auth_cost_cpu_us"] / v["cpu_us_mean"], 1)
        return f"{v['auth_cost_cpu_us']} µs CPU per request ({share}% of {v['cpu_us_mean']} µs)"

    def versus(key: str) -> str:
        v = post[key]
        return (
            f"{v['cpu_us_p50_minus_no_verification']:+} µs (p50), "
            f"{v['cpu_us_mean_minus_no_verification']:+} µs (mean)"
        )

    return "\n\n".join(
        [
            f"In-process, one thread: {r['params']['verifier']}. POST /orders through the real "
            "command API app (Flask test client, real SQLite), the three variants interleaved "
            f"request by request, {r['params']['post_requests_per_variant']:,} requests each; "
            "CPU = the thread's CPU time, so other processes on the shared machine do not count.",
            table(
                ("TokenVerifier.verify", "calls", "CPU µs mean", "wall p50 µs", "p95", "p99"),
                verify_rows,
            ),
            table(
                (
                    "POST /orders",
                    "CPU µs p50",
                    "CPU µs mean",
                    "wall µs p50",
                    "auth hook CPU µs p50",
                    "hook mean",
                    "hook p99",
                    "hook share of CPU",
                    "CPU µs mean without the hook",
                ),
                post_rows,
            ),
            f"POST /orders with authentication (repeated token): **{cached['cpu_us_mean']} µs "
            f"CPU** per request; without it: **{cached['cpu_us_mean_without_auth_hook']} µs** "
            f"(the same requests minus their auth hook). Authentication adds "
            f"**{cost('repeated_token')}** with a repeated token and **{cost('fresh_token')}** "
            "with a fresh token per request (the hook's CPU time minus the stub hook's). "
            f"Cross-check against the no-verification variant ({stub['cpu_us'].get('p50')} µs "
            f"p50): repeated token {versus('repeated_token')}, fresh token "
            f"{versus('fresh_token')}. The auth hook is install_auth's before_request check: "
            "the header, the route's policy, the verifier, the scopes.",
        ]
    )


def post_stages_section(r: Json) -> str:
    post = r["results"]["post_orders"]
    rows = [
        (
            v["label"],
            v["cpu_us_mean"],
            f"{v['share_pct']}%",
            v.get("cpu_us_mean_corrected", ""),
            f"{v['share_pct_corrected']}%" if "share_pct_corrected" in v else "",
            v["wall_us_mean"],
        )
        for v in post["stages"].values()
    ]
    rows.append(
        (
            "**total** (instrumented requests)",
            post["instrumented_cpu_us_mean"],
            "100%",
            post.get("cpu_us_mean_corrected", ""),
            "100%",
            post["instrumented_wall_us_mean"],
        )
    )
    rows.append(
        (
            "total, plain requests (no wrappers, interleaved)",
            post["plain_cpu_us_mean"],
            "",
            "",
            "",
            post["plain_wall_us_mean"],
        )
    )
    return "\n\n".join(
        [
            f"In-process, one thread: {r['params']['request']}; {post['requests']:,} "
            f"instrumented requests. Method: {r['params']['method']}. Exclusive time: each "
            "nanosecond is charged to one stage, so the rows add up to the total. "
            f"Instrumentation: {post['wrapped_calls_per_post']} wrapped calls per POST at "
            f"~{post.get('wrapped_call_cost_ns', '?')} ns CPU each; the corrected column "
            "takes each stage's share of it out.",
            table(
                (
                    "stage",
                    "CPU µs per POST (mean)",
                    "share",
                    "corrected CPU µs",
                    "share",
                    "wall µs per POST",
                ),
                rows,
            ),
            f"The append (five rows) is **{post['append_cpu_us_mean']} µs CPU** but "
            f"**{post['append_wall_us_mean']} µs wall** per POST: the difference is mostly "
            "the COMMIT's fsync, waited for, not computed. Our code (every row but the test "
            f"client and Flask/Werkzeug) is {post['our_code_cpu_us_mean']} µs CPU.",
        ]
    )


def cluster_scaling_section(r: Json) -> str:
    commands, projectors = r["results"]["commands"], r["results"]["projectors"]
    command_rows = [
        (
            run["hosts"],
            run["connections"],
            run["rps"],
            run["errors"],
            run["p99_ms_worst_host"],
            run["machine_cores_busy"],
        )
        for run in (commands["1_host"], commands["2_hosts"])
    ]
    projector_rows = [
        (
            run["projectors"],
            run["events"],
            run["events_per_s_from_process_start"],
            run.get("events_per_s_after_first_commit", ""),
            run["machine_cores_busy"],
        )
        for run in (projectors["1_projectors"], projectors["3_projectors"])
    ]
    return "\n\n".join(
        [
            table(
                (
                    "command hosts",
                    "connections",
                    "commands/s",
                    "errors",
                    "p99 ms",
                    "machine cores busy",
                ),
                command_rows,
            ),
            f"2 hosts / 1 host: **{commands['2_hosts_vs_1']}x**",
            table(
                (
                    "projectors",
                    "events",
                    "events/s from start",
                    "events/s after first commit",
                    "machine cores busy",
                ),
                projector_rows,
            ),
            f"3 projectors / 1: **{projectors['3_projectors_vs_1']}x** (from process start)",
        ]
    )


SECTIONS: dict[str, Callable[[Json], str]] = {
    "append": append_section,
    "concurrent_append": concurrent_append_section,
    "http_commands": http_section,
    "pipeline_http": pipeline_http_section,
    "freshness": freshness_section,
    "relay": relay_section,
    "projector": projector_section,
    "aggregate_load": aggregate_section,
    "auth_cost": auth_section,
    "post_stages": post_stages_section,
    "cluster_scaling": cluster_scaling_section,
}


def memory_section(results: dict[str, Json]) -> str:
    rows = [
        (name, process, mib)
        for name in ORDER
        if name in results
        for process, mib in results[name].get("memory_peak_mib", {}).items()
    ]
    return table(("benchmark", "process", "peak RSS (VmHWM) MiB"), rows)


def profiles_section(results: dict[str, Json], top: int = 8) -> str:
    parts = []
    for name in ORDER:
        for label, prof in results.get(name, {}).get("profiles", {}).items():
            if not prof or "error" in prof:
                parts.append(f"**{name}: {label}**: {prof.get('error', 'no samples')}")
                continue
            selfs = "; ".join(f"`{f}` {p}%" for f, p in prof.get("self_top_pct", [])[:top])
            ours = "; ".join(f"`{f}` {p}%" for f, p in prof.get("inclusive_ours_pct", [])[:top])
            libs = "; ".join(f"{f} {p}%" for f, p in prof.get("self_by_library_pct", [])[:6])
            parts.append(
                f"**{name}: {label}**\n\n- self time: {selfs}\n- our functions "
                f"(inclusive): {ours}\n- self time by package: {libs}"
            )
    return "\n\n".join(parts)


def render(results: dict[str, Json], analysis: str) -> str:
    out = [
        "# Benchmarks",
        "<!-- Generated by `python -m bench.report` from bench/results/*.json and "
        "bench/analysis.md: edit those, not this file. -->",
        "`make bench` runs every benchmark under bench/ (about 30 minutes on 2 idle cores; "
        "`.venv/bin/python -m bench --quick` is a trial run with small sizes) and regenerates "
        "this page. One benchmark alone: `python -m bench.<name> [--quick]` ("
        + ", ".join(ORDER)
        + "), then `python -m bench.report`.",
        "## Machine",
        machine_section(results),
        "## Targets of issue 12",
        "Each goal of the issue's table, measured from the result of the run named beside it "
        "(ratios are side by side in that run; the load average says how busy the 2 cores "
        "were with other work). Quick runs use trial sizes: indicative, not the target's "
        "conditions.",
        issue_targets_section(results),
        "## Every target the benchmarks record",
        targets_section(results),
    ]
    for name in ORDER:
        if name in results:
            quick = " (quick trial sizes)" if results[name]["params"].get("quick") else ""
            out += [f"## {TITLES[name]}{quick}", SECTIONS[name](results[name])]
    out += [
        "## 8. Peak memory per process (runs 2 to 5)",
        memory_section(results),
        "## Profiles",
        "py-spy for the processes (sampling, idle threads excluded), cProfile "
        "for in-process runs (deterministic; the percentages are shares of the run's time).",
        profiles_section(results),
    ]
    if analysis:
        out += [analysis.strip()]
    return "\n\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    results: dict[str, Json] = {}
    for name in ORDER:
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    if not results:
        raise SystemExit(f"no results in {RESULTS_DIR}: run `make bench` first")
    analysis_path = REPO_ROOT / "bench" / "analysis.md"
    analysis = analysis_path.read_text() if analysis_path.exists() else ""
    Path(args.out).write_text(render(results, analysis))
    print(f"wrote {args.out} from {len(results)} result files")


if __name__ == "__main__":
    main()
