"""What the network-fault tooling does before any process runs: Toxiproxy's install without Go,
and the broker config a proxied listener adds (devtools/toxiproxy.py, devtools/local_kafka.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.kafka_security import SecureKafka
from devtools.local_kafka import LocalKafka, LocalKafkaError, ProxiedListener
from devtools.toxiproxy import ToxiproxyUnavailable, install


def test_install_without_go_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no cached binary
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no go
    with pytest.raises(ToxiproxyUnavailable, match=r"Go toolchain .* is not on PATH"):
        install()


def test_a_proxied_listener_is_advertised_at_its_proxy(tmp_path: Path) -> None:
    extra = ProxiedListener("RELAY", port=19001, advertised_port=19002)
    broker = LocalKafka(port=19000, data_dir=tmp_path, controller_port=19003,
                        proxied_listeners=[extra])  # fmt: skip
    broker._write_config()
    props = dict(
        line.split("=", 1)
        for line in broker.properties_path.read_text().splitlines()
        if line and not line.startswith("#")
    )

    assert props["listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:19000",
        "CONTROLLER://127.0.0.1:19003",
        "RELAY://127.0.0.1:19001",
    ]
    assert props["advertised.listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:19000",
        "RELAY://127.0.0.1:19002",
    ]
    assert "RELAY:PLAINTEXT" in props["listener.security.protocol.map"].split(",")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_a_secure_broker_takes_no_proxied_listener(tmp_path: Path) -> None:
    with pytest.raises(LocalKafkaError, match="plaintext"):
        LocalKafka(
            port=19000,
            data_dir=tmp_path,
            security=SecureKafka(),
            proxied_listeners=[ProxiedListener("RELAY", 19001, 19002)],
        )
