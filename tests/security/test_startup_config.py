"""Unsafe auth settings stop a service at start-up: dev mode off loopback, and AUTH_MODE=jwt
without an issuer or a key source (in-process, and the real console scripts)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from command_service.http.app import create_app as create_command_app
from query_service.http.app import create_app as create_query_app
from shared.infra.auth_setup import build_verifier
from shared.infra.config import ConfigError, Settings
from tests.support.processes import ServiceRunner, console_script, free_port

SERVICES = {
    "command": ("command-api", "command_service.server", "COMMAND_API"),
    "query": ("query-api", "query_service.server", "QUERY_API"),
}


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"DATA_DIR": str(tmp_path), **env})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "10.0.0.1", "example.com"])
def test_dev_mode_refuses_a_non_loopback_bind(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        build_verifier(settings(tmp_path, AUTH_MODE="dev"), host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_dev_mode_serves_loopback(tmp_path: Path, host: str) -> None:
    assert build_verifier(settings(tmp_path, AUTH_MODE="dev"), host) is not None


@pytest.mark.parametrize(
    "env, reason",
    [
        ({}, "AUTH_ISSUER"),
        ({"AUTH_ISSUER": "https://id.example"}, "AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE"),
        ({"AUTH_MODE": "dev", "AUTH_ALGORITHMS": "HS256"}, "asymmetric"),
        ({"AUTH_MODE": "dev", "AUTH_ALGORITHMS": "none"}, "asymmetric"),
    ],
)
@pytest.mark.parametrize("create_app", [create_command_app, create_query_app])
def test_an_app_without_safe_token_settings_is_not_built(
    tmp_path: Path, env: dict[str, str], reason: str, create_app: Callable[[Settings], Flask]
) -> None:
    env = {"READ_MODEL_URL": f"sqlite:///{tmp_path / 'read.db'}", **env}
    with pytest.raises(ConfigError, match=reason):
        create_app(settings(tmp_path, **env))


@pytest.mark.parametrize("service", sorted(SERVICES))
@pytest.mark.parametrize(
    "env, reason",
    [
        ({"AUTH_MODE": "dev", "HOST": "0.0.0.0"}, "refuses to listen on '0.0.0.0'"),
        ({"AUTH_MODE": "jwt"}, "AUTH_ISSUER must be set"),
        ({"AUTH_MODE": "jwt", "AUTH_ISSUER": "https://id.example"}, "AUTH_JWKS_URL"),
    ],
)
def test_the_real_service_exits_instead_of_serving(
    tmp_path: Path, service: str, env: dict[str, str], reason: str
) -> None:
    script, module, prefix = SERVICES[service]
    runner = ServiceRunner(tmp_path)
    overrides = {
        f"{prefix}_HOST": env.get("HOST", "127.0.0.1"),
        f"{prefix}_PORT": str(free_port()),
        "READ_MODEL_URL": f"sqlite:///{tmp_path / 'read.db'}",
        **{name: value for name, value in env.items() if name != "HOST"},
    }
    done = subprocess.run(
        console_script(script, module),
        env=runner.base_env(**overrides),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert reason in done.stdout + done.stderr
