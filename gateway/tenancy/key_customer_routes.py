"""`/v1/keys` and `/v1/customers`: a tenant's owners and admins manage its API keys and
customers themselves (issue #13). Thin: `service` and `customers` do the work, the same use
cases the operator API calls. Guard: `requires("tenant_admin", tenant_wide=True)` (a
`tenant_admin` key not bound to a customer, or an owner/admin session)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, HeaderParameter

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep, page_limit
from gateway.tenancy import customers
from gateway.tenancy import service as tenancy
from gateway.tenancy.customers import (
    MAX_MOVE_IDEMPOTENCY_KEY,
    CreditMove,
    CreditMoveOut,
    CustomerList,
    CustomerOut,
)
from gateway.tenancy.service import KeyList
from tenants.customers import CustomerCreate, CustomerUpdate
from tenants.kernel.errors import InvalidRequest
from tenants.keys import KeyUpdate
from tenants.schemas import KeyCreate, KeyCreated, KeyOut

#: The longest `q` (the customers table's limit on the tenant's own id).
MAX_QUERY = 200

MoveKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", required=False, max_length=MAX_MOVE_IDEMPOTENCY_KEY)]


class KeyController(Controller):
    path = "/v1/keys"
    tags = ["keys"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @post("/", status_code=201, summary="Create an API key")
    async def create(self, principal: Principal, runtime: RuntimeDep,
                     data: KeyCreate) -> KeyCreated:
        """`customer_id` (the tenant's own id for a customer) binds the key to that
        customer; `monthly_budget_mc` caps what its generations reserve per calendar month
        (UTC); `rate_limit` replaces the tenant's per-key default. The response is the only
        place the key's secret ever appears."""
        return await tenancy.create_key(runtime, principal.tenant, data, actor=principal.actor)

    @get("/", summary="List the tenant's API keys (no secrets)")
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> KeyList:
        """Newest first, revoked ones included; each with `month_spend_mc`, what its
        generations charged or hold this calendar month (UTC)."""
        return await tenancy.list_keys(runtime, principal.tenant, limit=page_limit(limit),
                                       cursor=cursor)

    @get("/{key_id:str}", summary="Read an API key (no secret)")
    async def read(self, principal: Principal, runtime: RuntimeDep,
                   key_id: FromPath[str]) -> KeyOut:
        """Another tenant's key is a 404."""
        return await tenancy.read_key(runtime, principal.tenant, key_id)

    @patch("/{key_id:str}", summary="Change an API key's name, budget or rate limit")
    async def update(self, principal: Principal, runtime: RuntimeDep, key_id: FromPath[str],
                     data: KeyUpdate) -> KeyOut:
        """`null` removes the budget or the key's own rate limit. The rate limit applies at
        once in this process, within seconds everywhere; the budget from the next submit."""
        return await tenancy.update_key(runtime, principal.tenant, key_id, data,
                                        actor=principal.actor)

    @delete("/{key_id:str}", status_code=200, summary="Revoke an API key")
    async def revoke(self, principal: Principal, runtime: RuntimeDep,
                     key_id: FromPath[str]) -> KeyOut:
        """The key is refused (401) at once in this process, within seconds everywhere.
        Revoking a revoked key changes nothing."""
        return await tenancy.revoke_key(runtime, principal.tenant, key_id,
                                        actor=principal.actor)


class CustomerController(Controller):
    path = "/v1/customers"
    tags = ["customers"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @get("/", summary="List and search the tenant's customers")
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    q: FromQuery[str | None] = None, tier: FromQuery[str | None] = None,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> CustomerList:
        """Newest first. `q`: the tenant's own id for them starts with it
        (case-insensitive); `tier`: exactly this tier. Each with this month's spend and, in
        the `mediahub` billing mode, its wallet's balance."""
        if (q is not None and len(q) > MAX_QUERY) or (tier is not None and len(tier) > 32):
            raise InvalidRequest("q is at most 200 characters, tier at most 32",
                                 code="invalid_query", param="q" if q and len(q) > 200
                                 else "tier")
        return await customers.list_customers(runtime, principal.tenant, q=q, tier=tier,
                                              limit=page_limit(limit), cursor=cursor)

    @post("/", status_code=201, summary="Create a customer")
    async def create(self, principal: Principal, runtime: RuntimeDep,
                     data: CustomerCreate) -> CustomerOut:
        """Customers are also created on their first request (`X-Customer-Id`, a key bound
        to them); this creates one ahead, with its tier and budget. 409 `customer_exists`
        when the tenant already has one with that `external_id`."""
        return await customers.create_customer(runtime, principal.tenant, data,
                                               actor=principal.actor)

    @get("/{customer_id:str}", summary="Read a customer")
    async def read(self, principal: Principal, runtime: RuntimeDep,
                   customer_id: FromPath[str]) -> CustomerOut:
        """By our id (`cus_…`) or, failing that, the tenant's own id for the customer."""
        return await customers.read_customer(runtime, principal.tenant, customer_id)

    @patch("/{customer_id:str}", summary="Change a customer's tier or monthly budget")
    async def update(self, principal: Principal, runtime: RuntimeDep,
                     customer_id: FromPath[str], data: CustomerUpdate) -> CustomerOut:
        """`tier` prices the customer's next generation with the tenant's
        `pricing.tier_markup_bps[tier]` (0 when the tenant set none for it);
        `monthly_budget_mc: null` removes the budget."""
        return await customers.update_customer(runtime, principal.tenant, customer_id, data,
                                               actor=principal.actor)

    @post("/{customer_id:str}/credits", status_code=201,
          summary="Give credits from the tenant's wallet to a customer's")
    async def grant(self, principal: Principal, runtime: RuntimeDep,
                    customer_id: FromPath[str], data: CreditMove,
                    idempotency_key: MoveKey = None) -> Response[CreditMoveOut]:
        """`mediahub` billing mode only (else 409 `billing_mode_self`). The
        `Idempotency-Key` header is required: a retry returns the first move. 402
        `insufficient_credits` when the tenant's wallet is short."""
        return Response(await customers.move_credits(
            runtime, principal.tenant, customer_id, data, _required(idempotency_key),
            take_back=False, actor=principal.actor), status_code=201)

    @post("/{customer_id:str}/credits/take_back", status_code=201,
          summary="Take credits back from a customer's wallet to the tenant's")
    async def take_back(self, principal: Principal, runtime: RuntimeDep,
                        customer_id: FromPath[str], data: CreditMove,
                        idempotency_key: MoveKey = None) -> Response[CreditMoveOut]:
        """As the grant, the other way: 402 `insufficient_credits` when the customer's
        available balance (reservations held aside) is short of the amount."""
        return Response(await customers.move_credits(
            runtime, principal.tenant, customer_id, data, _required(idempotency_key),
            take_back=True, actor=principal.actor), status_code=201)


def _required(idempotency_key: str | None) -> str:
    if not idempotency_key:
        raise InvalidRequest("credit moves need an Idempotency-Key header",
                             code="idempotency_key_required", param="Idempotency-Key")
    return idempotency_key
