"""The one `Principal` every credential becomes, and where guards leave it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Where the guard leaves the principal in the ASGI scope's state.
PRINCIPAL_STATE_KEY = "mediahub.principal"
#: The longest `X-Customer-Id` accepted (the customers table's limit).
MAX_CUSTOMER_ID = 200
#: The longest team id accepted (`X-Team-Id`, a body's `team_id`).
MAX_TEAM_ID = 32

KeyScope = Literal["generate", "read", "billing", "tenant_admin"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, whatever credential it came with."""

    #: `key`: a tenant API key; `user`: a person signed in with a session cookie;
    #: `operator`: the platform's admin token.
    kind: Literal["key", "operator", "user"]
    #: The tenant acted for (None: the operator).
    tenant_id: str | None
    #: The API key used (None: the operator, a user).
    key_id: str | None
    #: The customer acted for: the key's own, `X-Customer-Id` on a tenant-wide key, or the
    #: customer a portal user is linked to.
    customer_id: str | None
    scopes: frozenset[str]
    #: The signed-in person (kind `user`).
    user_id: str | None = None
    #: The user's role in its tenant: a staff role (`owner`, `admin`, `developer`,
    #: `billing`, `viewer`) or `customer` (a portal user). None for keys and the operator.
    role: str | None = None
    #: The session the user came with (so it can sign itself out).
    session_id: str | None = None
    #: The team spent for and shown (`X-Team-Id` or a body's `team_id`), and the caller's
    #: role in it (`owner`, `admin`, `member`, `viewer`).
    team_id: str | None = None
    team_role: str | None = None
    #: Whether the key (kind `key`) had a monthly budget when it was last read (the key
    #: cache's few seconds): a submit without one reads no budget. True when unknown.
    key_budgeted: bool = True

    @property
    def actor(self) -> str:
        """Who did it, as the audit log writes it: `user:<id>`, `key:<id>` or `operator`."""
        if self.kind == "operator":
            return "operator"
        if self.kind == "user":
            return f"user:{self.user_id}"
        return f"key:{self.key_id}"

    @property
    def tenant(self) -> str:
        """The tenant id of a tenant principal (a programming error for the operator)."""
        assert self.tenant_id is not None, "an operator principal has no tenant"
        return self.tenant_id


OPERATOR = Principal(kind="operator", tenant_id=None, key_id=None, customer_id=None,
                     scopes=frozenset())
