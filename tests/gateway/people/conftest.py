"""Fixtures of the people tests: cheap argon2 parameters, and limits high enough that only
the throttling tests meet them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from gateway.core.settings import Settings
from tenants.users import passwords
from tests.conftest import Inbox, make_settings

#: argon2id at its lowest cost: the product's defaults (RFC 9106) take ~50 ms per hash.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_passwords() -> Iterator[None]:
    passwords.use_hasher(CHEAP)
    yield
    passwords.use_hasher(PasswordHasher())


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_server: Inbox) -> Settings:
    return make_settings(database_url, tmp_path, smtp_host=smtp_server.host,
                         smtp_port=smtp_server.port, auth_attempts_per_address_per_minute=1000)
