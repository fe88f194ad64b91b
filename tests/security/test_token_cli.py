"""`orders-admin token` and `orders-admin keys`: what they mint is what the services accept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from shared.infra.auth_setup import build_verifier
from shared.infra.config import Settings
from shared.infra.tokens import TokenVerifier
from tests.support.processes import console_script


def orders_admin(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    env.pop("AUTH_ISSUER", None)
    argv = [*console_script("orders-admin", "ops.admin"), *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def dev_verifier(data_dir: Path) -> TokenVerifier:
    """The verifier a dev-mode service on this data dir builds."""
    settings = Settings.from_env({"DATA_DIR": str(data_dir), "AUTH_MODE": "dev"})
    return build_verifier(settings, "127.0.0.1")


def test_a_minted_token_is_accepted_by_the_services_verifier(tmp_path: Path) -> None:
    done = orders_admin(
        tmp_path,
        "token",
        "--sub",
        "alice",
        "--customer",
        "c-42",
        "--scope",
        "orders:write read:own",
    )
    assert done.returncode == 0, done.stderr
    principal = dev_verifier(tmp_path).verify(done.stdout.strip())
    assert (principal.sub, principal.customer_id) == ("alice", "c-42")
    assert principal.scopes == {"orders:write", "read:own"}


def test_an_unknown_scope_mints_nothing(tmp_path: Path) -> None:
    done = orders_admin(tmp_path, "token", "--sub", "alice", "--scope", "orders:write root")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "unknown scope(s): root" in done.stderr


def test_keys_writes_a_projector_token_with_events_read_only(tmp_path: Path) -> None:
    done = orders_admin(tmp_path, "keys")
    assert done.returncode == 0, done.stderr
    token_file = tmp_path / "auth" / "query-projector.token"
    assert token_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    principal = dev_verifier(tmp_path).verify(token_file.read_text().strip())
    assert (principal.sub, principal.client_id) == ("query-projector", "query-projector")
    assert principal.scopes == {"events:read"}


def test_keys_writes_a_prometheus_token_with_metrics_read_only(tmp_path: Path) -> None:
    done = orders_admin(tmp_path, "keys")
    assert done.returncode == 0, done.stderr
    token_file = tmp_path / "auth" / "prometheus.token"
    # Readable by the Prometheus container's own user; the folder keeps others out.
    assert token_file.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "auth").stat().st_mode & 0o077 == 0
    principal = dev_verifier(tmp_path).verify(token_file.read_text().strip())
    assert (principal.sub, principal.client_id) == ("prometheus", "prometheus")
    assert principal.scopes == {"metrics:read"}
