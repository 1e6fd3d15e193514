"""Shared steps of the suggestion tests: generations written straight into the table (the
suggestions read history, they do not make it), and customers by their tenant's name."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gateway.generations.models import Generation
from tenants.models import Customer
from tests.conftest import Gateway, Tenant


def as_customer(tenant: Tenant, name: str, **headers: str) -> dict[str, str]:
    return {**tenant.auth, "X-Customer-Id": name, **headers}


async def customer_id(gw: Gateway, tenant: Tenant, name: str) -> str:
    """The id of the tenant's customer `name` (created by acting for it once)."""
    r = await gw.client.get("/v1/suggestions", headers=as_customer(tenant, name),
                            params={"type": "image"})
    assert r.status_code == 200, r.text
    async with gw.runtime.db.session() as session:
        found = await session.scalar(select(Customer.id).where(
            Customer.tenant_id == tenant.id, Customer.external_id == name))
    assert found is not None
    return found


async def seed(gw: Gateway, tenant: Tenant, prompt: str, *, customer: str | None = None,
               team: str | None = None, key_id: str | None = None,
               status: str = "succeeded", media_type: str = "image",
               created_at: datetime | None = None, params: dict[str, Any] | None = None,
               deleted: bool = False) -> str:
    generation = Generation(
        id=f"gen_{secrets.token_hex(8)}", tenant_id=tenant.id, customer_id=customer,
        api_key_id=key_id, type=media_type, operation="text_to_image", prompt=prompt,
        params=params or {}, provider="local-image", status=status, cost_usd_micros=0,
        wholesale_mc=0, retail_mc=0, estimated_mc=0, request_hash="0" * 64, candidates=[],
        attempts_log=[], team_id=team)
    if created_at is not None:
        generation.created_at = created_at
    if deleted:
        generation.deleted_at = created_at or datetime.now().astimezone()
    async with gw.runtime.db.transaction() as session:
        session.add(generation)
    return generation.id


async def suggestions(gw: Gateway, auth: dict[str, str], **query: Any) -> dict[str, Any]:
    r = await gw.client.get("/v1/suggestions", headers=auth, params={"type": "image", **query})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def history(body: dict[str, Any]) -> set[str]:
    return {s["text"] for s in body["data"] if s["source"] == "history"}
