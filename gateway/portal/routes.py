"""The page Stripe Checkout returns a buyer to (the portal app itself is `site.py`)."""

from __future__ import annotations

import html
import re

from litestar import Response, get
from litestar.params import FromQuery
from litestar.response import Response as LitestarResponse

from billing.models import Purchase
from gateway.core.deps import RuntimeDep
from tenants.models import Tenant

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}")


def _page(title: str, heading: str, text: str, status_code: int = 200) -> Response[str]:
    return LitestarResponse(
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:3rem}</style></head>"
        f"<body><h1>{heading}</h1><p>{text}</p></body></html>",
        media_type="text/html", status_code=status_code)


@get("/portal/credits", include_in_schema=False)
async def portal_credits(runtime: RuntimeDep, purchase: FromQuery[str | None] = None,
                         canceled: FromQuery[str | None] = None) -> Response[str]:
    """Where Stripe Checkout sends a buyer back (`gateway.credits.purchases`): says, in the
    tenant's name, whether the purchase went through, is being confirmed, or was canceled.
    404 for an unknown purchase. (The portal issue builds the full credits page.)"""
    row: Purchase | None = None
    tenant: Tenant | None = None
    if purchase and len(purchase) <= 32:
        async with runtime.db.session() as session:
            row = await session.get(Purchase, purchase)
            tenant = await session.get(Tenant, row.tenant_id) if row is not None else None
    if row is None or tenant is None:
        return _page("mediahub", "Purchase not found",
                     "This link does not name a purchase.", status_code=404)
    name = html.escape(tenant.name)
    if canceled:
        return _page(name, name, "Your purchase was canceled; nothing was charged.")
    if row.status == "open":
        # Stripe redirects before its webhook arrives; the credits follow within moments.
        return _page(name, name, "Thank you: your payment went through. Your credits will "
                                 "appear in your balance in a moment.")
    if row.status == "paid":
        return _page(name, name, "Thank you: your purchase went through and its credits "
                                 "are in your balance.")
    return _page(name, name, "This purchase was refunded.")
