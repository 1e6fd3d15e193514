"""Who is calling: every credential becomes one `Principal`, here and nowhere else.

- `Authorization: Bearer mh_<prefix>_<secret>`: a tenant's API key (hashed at rest, resolved
  through a cache of a few seconds so most requests cost no query; a revoke in this process
  evicts at once, other replicas notice within `KeyCache.ttl_s`). A key not bound to a
  customer may act for one with `X-Customer-Id` (the tenant's own id for it; created on
  first use).
- `Authorization: Bearer <MEDIAHUB_ADMIN_TOKEN>` on operator routes: the operator (compared
  in constant time).
- The `mh_session` cookie of a signed-in user (gateway/core/cookies.py): a `user` principal
  with its role's scopes (`ROLE_SCOPES`); a portal customer acts for its own customer, staff
  tenant-wide (or for `X-Customer-Id`). Good only on a host of its tenant; every write
  (POST/PUT/PATCH/DELETE) needs `X-CSRF-Token` and a same-host `Origin` when one is sent
  (403 `csrf_failed`). A request with both a bearer key and the cookie is the key's.

Routes declare what they need with guards (`requires("generate")`, `operator_only`), which
Litestar runs before it reads or validates the body: a request without a valid credential
gets 401 (and one over its rate limit 429) without its body ever being parsed. The guard
leaves the `Principal` in the request's state; handlers receive it as the `principal`
dependency (`provide_principal`).
"""

from gateway.core.auth.guards import (
    authenticate,
    operator_only,
    provide_principal,
    requires,
    staff_or_key,
)
from gateway.core.auth.keys import authenticate_key, bearer, key_cache
from gateway.core.auth.principal import (
    MAX_CUSTOMER_ID,
    MAX_TEAM_ID,
    OPERATOR,
    PRINCIPAL_STATE_KEY,
    KeyScope,
    Principal,
)
from gateway.core.auth.sessions import authenticate_session
from gateway.core.auth.teams import with_team

__all__ = [
    "MAX_CUSTOMER_ID",
    "MAX_TEAM_ID",
    "OPERATOR",
    "PRINCIPAL_STATE_KEY",
    "KeyScope",
    "Principal",
    "authenticate",
    "authenticate_key",
    "authenticate_session",
    "bearer",
    "key_cache",
    "operator_only",
    "provide_principal",
    "requires",
    "staff_or_key",
    "with_team",
]
