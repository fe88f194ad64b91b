"""7. What authentication costs: token verification, and POST /orders with and without it.

The product has no switch to turn authentication off (by design), so its cost is measured
in-process, on one thread, with the real verifier (shared.infra.auth_setup.build_verifier,
AUTH_MODE=dev: an ES256 key file, the same code path as an identity provider's keys):

- TokenVerifier.verify, µs per call (the mean: CPU time of a loop; percentiles: wall time
  of each call, which a busy machine stretches): a fresh token each call (parse, key
  lookup, ES256 signature and claims check, then into the cache) and one repeated token (a
  cache hit); and, as the floor of the fresh case, the ES256 signature check alone;
- POST /orders through the real command API app (Flask test client, real SQLite file, the
  service's default synchronous level), CPU µs (this thread's CPU time: the test client,
  Flask and SQLite all run on it) and wall µs of each request, with the auth hook
  (install_auth's before_request check) timed on its own the same way, in three variants
  interleaved request by request on the same app and database:
  - repeated token: one admin token on every request (each client's normal case);
  - fresh token: a different admin token on every request, so every one is a signature check;
  - no verification: the auth hook replaced, in this benchmark's app only, by a stub that
    sets an admin principal without looking at the header (the header is still sent),
    i.e. POST /orders as it would cost without authentication.

Authentication's cost is the hook's CPU time minus the stub's (which leaves the timer's own
cost out); "without auth" is the request's CPU time minus its hook's. The no-verification
variant's own request CPU time is the cross-check (a difference of two ~1 ms figures, so
noisier than the hook's own time).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, g
from jwt.algorithms import ECAlgorithm
from jwt.utils import base64url_decode

from bench.auth import AUTH_ENV, admin_token, auth_settings, bench_principal
from bench.common import Result, base_parser, cprofile_summary, percentiles, work_dir
from bench.workload import place_order_json
from command_service.http.app import create_app
from shared.infra.auth_setup import build_verifier
from shared.infra.config import Settings
from shared.infra.dev_keys import ensure_dev_keys
from shared.infra.tokens import TokenVerifier

VARIANTS = ("repeated_token", "fresh_token", "no_verification")
LABELS = {
    "repeated_token": "repeated token (cache hit)",
    "fresh_token": "fresh token per request (signature check)",
    "no_verification": "no verification (stub hook, bench only)",
}


def mint_tokens(data_dir: Path, count: int) -> list[str]:
    """`count` distinct admin tokens (each has its own jti), minted before any clock starts."""
    return [admin_token(data_dir) for _ in range(count)]


def verify_loop_us(verifier: TokenVerifier, tokens: list[str]) -> float:
    """Mean CPU µs per verify over `tokens`: this thread's CPU time around the whole loop, so
    time other processes take the core for is not counted (the machine is shared)."""
    started = time.thread_time_ns()
    for token in tokens:
        verifier.verify(token)
    return (time.thread_time_ns() - started) / 1000 / len(tokens)


def verify_samples_us(verifier: TokenVerifier, tokens: list[str]) -> list[float]:
    """Wall µs of each verify over `tokens` (perf_counter around each call: adds ~0.1 µs)."""
    samples = []
    clock = time.perf_counter_ns
    for token in tokens:
        before = clock()
        verifier.verify(token)
        samples.append((clock() - before) / 1000)
    return samples


def verify_cost(data_dir: Path, fresh: int, repeated: int) -> dict[str, Any]:
    """TokenVerifier.verify for fresh tokens (each verified once: a miss) and for one repeated
    token (a hit); each measurement on a verifier of its own, as a new worker has."""
    settings = auth_settings(data_dir)

    def new_verifier() -> TokenVerifier:
        return build_verifier(settings, "127.0.0.1")

    tokens = mint_tokens(data_dir, 2 * fresh)
    warm = new_verifier()
    for token in mint_tokens(data_dir, 20):  # warm-up: first-call costs, not per-token ones
        warm.verify(token)
    fresh_mean = verify_loop_us(new_verifier(), tokens[:fresh])
    fresh_samples = verify_samples_us(new_verifier(), tokens[fresh:])
    cached = new_verifier()
    cached.verify(tokens[0])  # into the cache
    cached_mean = verify_loop_us(cached, [tokens[0]] * repeated)
    cached_samples = verify_samples_us(cached, [tokens[0]] * repeated)
    profiled = new_verifier()
    profile_tokens = mint_tokens(data_dir, min(fresh, 500))
    profile = cprofile_summary(lambda: [profiled.verify(t) for t in profile_tokens])
    return {
        "fresh_token": {
            "calls": fresh,
            "us_mean": round(fresh_mean, 2),
            "us": percentiles(fresh_samples),
        },
        "repeated_token": {
            "calls": repeated,
            "us_mean": round(cached_mean, 2),
            "us": percentiles(cached_samples),
        },
        "signature_only": signature_only(data_dir, tokens[:fresh]),
        "profile_fresh": profile,
    }


def signature_only(data_dir: Path, tokens: list[str]) -> dict[str, Any]:
    """The floor of a fresh token's check: only the ES256 signature over its signing input
    (PyJWT's ECAlgorithm.verify on cryptography), no parsing, claims, key lookup or cache."""
    algorithm = ECAlgorithm(ECAlgorithm.SHA256)
    public_key = ensure_dev_keys(data_dir).private_key.public_key()
    parts: list[tuple[bytes, bytes]] = []
    for token in tokens:
        signing_input, _, encoded_signature = token.rpartition(".")
        parts.append((signing_input.encode(), base64url_decode(encoded_signature)))
    for message, signature in parts[:20]:  # warm-up
        algorithm.verify(message, public_key, signature)
    started = time.thread_time_ns()
    for message, signature in parts:
        algorithm.verify(message, public_key, signature)
    mean_us = (time.thread_time_ns() - started) / 1000 / len(parts)
    samples = []
    clock = time.perf_counter_ns
    for message, signature in parts:
        before = clock()
        if not algorithm.verify(message, public_key, signature):
            raise RuntimeError("a bench token's signature does not verify")
        samples.append((clock() - before) / 1000)
    return {
        "calls": len(parts),
        "us_mean": round(mean_us, 2),
        "us": percentiles(samples),
    }


class TimedHook:
    """A before_request function, timed: CPU µs (this thread's, so a preempted call is not
    charged for the wait) and wall µs of each call."""

    def __init__(self, hook: Callable[[], Any]) -> None:
        self.hook = hook
        self.cpu_us: list[float] = []
        self.wall_us: list[float] = []

    def __call__(self) -> Any:
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        try:
            return self.hook()
        finally:
            self.wall_us.append((time.perf_counter_ns() - wall) / 1000)
            self.cpu_us.append((time.thread_time_ns() - cpu) / 1000)

    def clear(self) -> None:
        self.cpu_us.clear()
        self.wall_us.clear()


def auth_hook_index(app: Flask) -> int:
    """Where install_auth's check sits among the app's before_request functions."""
    for index, hook in enumerate(app.before_request_funcs.get(None, [])):
        if getattr(hook, "__qualname__", "").startswith("install_auth."):
            return index
    raise SystemExit("no install_auth before_request hook found in the command API app")


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def post_cost(folder: Path, body: str, per_variant: int, warmup: int = 50) -> dict[str, Any]:
    """POST /orders through the real app in the three variants, interleaved request by
    request (the order alternating), so a busy machine's drift hits them alike."""
    data_dir = folder / "in-process"
    settings = Settings.from_env({**AUTH_ENV, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"})
    app = create_app(settings)
    client = app.test_client()
    hooks = app.before_request_funcs[None]
    index = auth_hook_index(app)
    real_hook = hooks[index]
    stub_principal = bench_principal()

    def stub_hook() -> None:
        g.principal = stub_principal

    repeated = f"Bearer {admin_token(data_dir)}"
    fresh_tokens = iter(f"Bearer {t}" for t in mint_tokens(data_dir, per_variant + warmup))
    timed = {
        "repeated_token": TimedHook(real_hook),
        "fresh_token": TimedHook(real_hook),
        "no_verification": TimedHook(stub_hook),
    }
    cpu_us: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    wall_us: dict[str, list[float]] = {variant: [] for variant in VARIANTS}

    def post(variant: str) -> None:
        hooks[index] = timed[variant]
        header = next(fresh_tokens) if variant == "fresh_token" else repeated
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        response = client.post(
            "/orders", data=body, content_type="application/json", headers={"Authorization": header}
        )
        wall_us[variant].append((time.perf_counter_ns() - wall) / 1000)
        cpu_us[variant].append((time.thread_time_ns() - cpu) / 1000)
        if response.status_code != 201:
            raise RuntimeError(f"{variant}: {response.status_code} {response.get_data(True)}")

    try:
        for _ in range(warmup):  # statement caches, imports, the repeated token's cache
            for variant in VARIANTS:
                post(variant)
        for variant in VARIANTS:
            timed[variant].clear()
            cpu_us[variant].clear()
            wall_us[variant].clear()
        for n in range(per_variant):
            for variant in VARIANTS if n % 2 == 0 else tuple(reversed(VARIANTS)):
                post(variant)
    finally:
        hooks[index] = real_hook
    outcome: dict[str, Any] = {}
    for variant in VARIANTS:
        hook = timed[variant]
        hook_cpu = mean(hook.cpu_us)
        cpu_mean = mean(cpu_us[variant])
        outcome[variant] = {
            "label": LABELS[variant],
            "requests": per_variant,
            "cpu_us_mean": round(cpu_mean, 1),
            "cpu_us": percentiles(cpu_us[variant]),
            "wall_us_mean": round(mean(wall_us[variant]), 1),
            "wall_us": percentiles(wall_us[variant]),
            "auth_hook_cpu_us_mean": round(hook_cpu, 2),
            "auth_hook_cpu_us": percentiles(hook.cpu_us),
            "auth_hook_wall_us": percentiles(hook.wall_us),
            "auth_hook_share_of_cpu_pct": round(100 * hook_cpu / cpu_mean, 2),
            "cpu_us_mean_without_auth_hook": round(cpu_mean - hook_cpu, 1),
        }
    stub = outcome["no_verification"]
    for variant in ("repeated_token", "fresh_token"):
        row = outcome[variant]
        row["auth_cost_cpu_us"] = round(
            row["auth_hook_cpu_us_mean"] - stub["auth_hook_cpu_us_mean"], 2
        )
        row["cpu_us_p50_minus_no_verification"] = round(
            row["cpu_us"]["p50"] - stub["cpu_us"]["p50"], 1
        )
        row["cpu_us_mean_minus_no_verification"] = round(
            row["cpu_us_mean"] - stub["cpu_us_mean"], 1
        )
    return outcome


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    args = parser.parse_args(argv)
    fresh, repeated = (300, 20_000) if args.quick else (2000, 200_000)
    per_variant = 400 if args.quick else 3000
    result = Result(
        "auth_cost",
        {
            "verifier": "shared.infra.auth_setup.build_verifier, AUTH_MODE=dev (ES256 key file)",
            "verify_fresh_tokens": fresh,
            "verify_repeated_calls": repeated,
            "post_requests_per_variant": per_variant,
            "request": "POST /orders, new order, 1-3 lines, admin token, Flask test client",
        },
        args.quick,
    )
    body = place_order_json()
    with work_dir("auth", args.keep) as folder:
        verify = verify_cost(folder / "verify", fresh, repeated)
        result.data["profiles"]["TokenVerifier.verify, fresh tokens (cProfile)"] = verify.pop(
            "profile_fresh"
        )
        result.data["results"]["verify"] = verify
        for name, numbers in verify.items():
            print(
                f"  verify, {name.replace('_', ' ')}: {numbers['us_mean']} µs mean, p50 "
                f"{numbers['us']['p50']} µs, p99 {numbers['us']['p99']} µs"
            )
        post = post_cost(folder, body, per_variant)
        result.data["results"]["post_orders"] = post
        for row in post.values():
            print(
                f"  POST /orders, {row['label']}: CPU p50 {row['cpu_us']['p50']} µs, mean "
                f"{row['cpu_us_mean']} µs (wall p50 {row['wall_us']['p50']} µs); auth hook CPU "
                f"p50 {row['auth_hook_cpu_us']['p50']} µs, mean {row['auth_hook_cpu_us_mean']} µs "
                f"({row['auth_hook_share_of_cpu_pct']}% of the mean)"
            )
    cached_us = verify["repeated_token"]["us_mean"]
    result.target("verify, repeated token (µs)", cached_us, "< 10 µs", cached_us < 10)
    result.save()


if __name__ == "__main__":
    main()
