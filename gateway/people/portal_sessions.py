"""Portal sessions minted by a tenant's backend (as Stripe's customer portal): the backend,
which knows who its customer is, asks for a one-time link; opening it signs that customer in
on the tenant's host. A tenant with its own user accounts never needs ours."""

from __future__ import annotations

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.people.schemas import PortalSessionIn, PortalSessionOut, TokenIn
from gateway.people.service import Opened, invalid_token, open_for, site_for
from gateway.people.sites import Caller, check_return_url, home_site
from tenants import audit
from tenants import service as tenants
from tenants.users import service as users


async def mint(runtime: Runtime, principal: Principal, body: PortalSessionIn) -> PortalSessionOut:
    """`POST /v1/portal_sessions`: a one-time link (valid `MEDIAHUB_PORTAL_SESSION_TTL_S`)
    that signs the customer (the tenant's own id; created on first use) in on the tenant's
    first domain (or the platform host) and sends the browser to `return_url`, which must be
    a path or a URL on the tenant's own hosts (422 `invalid_return_url`)."""
    settings = runtime.settings
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, principal.tenant)
        return_url = await check_return_url(session, settings, tenant.id, body.return_url)
        customer = await tenants.customer_for(session, tenant.id, body.customer_id,
                                              create=True)
        assert customer is not None
        raw, row = await users.issue_token(session, tenant.id, "portal",
                                           customer_id=customer.id, redirect_to=return_url,
                                           ttl_s=settings.portal_session_ttl_s)
        site = await home_site(session, settings, tenant)
        await audit.record(session, tenant_id=tenant.id, actor=principal.actor,
                           action="portal_session.created", target_type="customer",
                           target_id=body.customer_id, after={"return_url": return_url})
    return PortalSessionOut(url=site.link("/v1/auth/portal", token=raw),
                            expires_at=row.expires_at, customer_id=body.customer_id,
                            return_url=return_url)


async def redeem(runtime: Runtime, caller: Caller, body: TokenIn) -> Opened:
    """`GET /v1/auth/portal?token=`: uses the link (once) and opens a session of the
    customer's portal user (created on first use, without email or password); 422
    `invalid_token` when used, expired or unknown."""
    site = await site_for(runtime, caller, body.tenant)
    async with runtime.db.transaction() as session:
        token = await users.redeem_token(session, site.tenant.id, body.token, ["portal"])
        if token is None or token.customer_id is None:
            raise invalid_token()
        user = await users.customer_user(session, site.tenant.id, token.customer_id)
        if user is None:
            user = await users.create_user(session, site.tenant.id, email=None,
                                           role="customer", customer_id=token.customer_id)
        elif user.disabled_at is not None:
            raise invalid_token()
        return await open_for(runtime, session, user, caller, "portal",
                              redirect_to=token.redirect_to or "/")
