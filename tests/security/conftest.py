"""Fixtures for the security tests: the real services, started once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.system import SecuritySystem, start_security_system
from tests.support.processes import ServiceRunner


@pytest.fixture(scope="module")
def security_service_env() -> dict[str, str]:
    """Extra environment of the module's services; a module overrides this fixture to set it."""
    return {}


@pytest.fixture(scope="module")
def security_system(
    tmp_path_factory: pytest.TempPathFactory, security_service_env: dict[str, str]
) -> Iterator[SecuritySystem]:
    """The command API and the query API (AUTH_MODE=dev) on a work directory of the module's."""
    with ServiceRunner(tmp_path_factory.mktemp("security")) as runner:
        yield start_security_system(runner, **security_service_env)
