"""Users, passwords and one-time tokens at the service level, on both databases."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st

from tenants import service as tenants
from tenants.kernel.db import Database
from tenants.kernel.errors import Conflict, InvalidRequest
from tenants.schemas import TenantCreate
from tenants.users import passwords
from tenants.users import service as users


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.engine.dispose()


async def new_tenant(db: Database) -> str:
    async with db.transaction() as session:
        tenant = await tenants.create_tenant(session, TenantCreate(
            name="T", slug=f"u-{secrets.token_hex(4)}"))
        return tenant.id


async def test_a_token_is_redeemed_once_under_concurrency(db: Database) -> None:
    tenant_id = await new_tenant(db)
    async with db.transaction() as session:
        user = await users.create_user(session, tenant_id, email="a@example.com",
                                       role="viewer")
        raw, _ = await users.issue_token(session, tenant_id, "magic", user_id=user.id,
                                         ttl_s=60)

    async def redeem() -> bool:
        async with db.transaction() as session:
            return await users.redeem_token(session, tenant_id, raw, ["magic"]) is not None

    won = await asyncio.gather(*(redeem() for _ in range(12)))
    assert won.count(True) == 1


async def test_a_token_serves_only_its_tenant_and_purpose(db: Database) -> None:
    tenant_id, other_id = await new_tenant(db), await new_tenant(db)
    async with db.transaction() as session:
        user = await users.create_user(session, tenant_id, email="b@example.com",
                                       role="viewer")
        raw, _ = await users.issue_token(session, tenant_id, "reset", user_id=user.id,
                                         ttl_s=60)
    async with db.transaction() as session:
        assert await users.redeem_token(session, other_id, raw, ["reset"]) is None
        assert await users.redeem_token(session, tenant_id, raw, ["magic"]) is None
        assert await users.redeem_token(session, tenant_id, raw, ["reset"]) is not None


async def test_email_is_unique_per_tenant_only(db: Database) -> None:
    one, two = await new_tenant(db), await new_tenant(db)
    async with db.transaction() as session:
        a = await users.create_user(session, one, email=" Same@Example.com", role="viewer")
        b = await users.create_user(session, two, email="same@example.com", role="viewer")
        assert a.email == b.email == "same@example.com"
        with pytest.raises(Conflict):
            await users.create_user(session, one, email="SAME@example.com", role="admin")


async def test_a_hash_made_with_other_parameters_is_replaced_on_sign_in() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, salt_len=8)
    stored = old.hash("a long enough password")
    ok, rehash = await passwords.verify_password(stored, "a long enough password")
    assert ok
    assert rehash is not None
    assert rehash != stored
    ok, again = await passwords.verify_password(rehash, "a long enough password")
    assert ok
    assert again is None
    assert await passwords.verify_password(rehash, "wrong password") == (False, None)
    assert await passwords.verify_password(None, "anything at all") == (False, None)


def test_the_product_hashes_with_argon2id_recommended_parameters() -> None:
    default = PasswordHasher()
    assert default.type.name == "ID"
    assert (default.time_cost, default.memory_cost, default.parallelism) == (3, 65536, 4)


def test_the_common_list_is_shipped_and_consulted() -> None:
    common = passwords.common_passwords()
    assert len(common) > 10_000
    assert "password123" in common
    with pytest.raises(InvalidRequest) as refused:
        passwords.check_policy("Password123", min_length=10)
    assert refused.value.param == "password"
    with pytest.raises(InvalidRequest):
        passwords.check_policy("me@example.com", min_length=8, email="ME@example.com")


@given(st.text(min_size=0, max_size=300))
def test_policy_accepts_exactly_what_is_long_short_enough_and_uncommon(candidate: str) -> None:
    expected = (10 <= len(candidate) <= passwords.MAX_LENGTH
                and candidate.lower() not in passwords.common_passwords())
    if expected:
        passwords.check_policy(candidate, min_length=10)
    else:
        with pytest.raises(InvalidRequest) as refused:
            passwords.check_policy(candidate, min_length=10)
        assert refused.value.param == "password"
