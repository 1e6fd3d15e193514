"""The ledger's own error. The others its verbs raise are the kernel's: `Conflict` (an
idempotency key reused with other fields), `InsufficientCredits` (a wallet too short) and
`NotFound` (no such account or pending transfer), from `tenants.kernel.errors`."""

from __future__ import annotations

from tenants.kernel.errors import Conflict


class AlreadyResolved(Conflict):
    """The pending transfer was already posted or voided (by a retry, a cancel or the sweeper)."""

    default_code = "transfer_already_resolved"
