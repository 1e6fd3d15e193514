"""The ledger's verbs: `open_tenant_accounts`, `customer_wallet`, `grant`, `move`, `reserve`,
`post`, `void`, `clawback`, `balance`, `balances`, `expired_reservations`.

Every verb runs inside the caller's transaction (so a generation row and its reservations
commit together) and is idempotent: the same idempotency key with the same fields returns the
first transfer; with other fields it raises `Conflict`.

How it stays correct under concurrency, on PostgreSQL and SQLite alike:
- a transfer is inserted first with `ON CONFLICT DO NOTHING`; a repeat (or a racing twin,
  which waits on the unique index) finds the first one and changes no balance;
- a wallet is debited by one conditional UPDATE (`... WHERE available >= amount`), so no
  read-modify-write can overdraw it; a CHECK constraint refuses it besides;
- a reservation ends by inserting its resolution, whose `pending_id` is UNIQUE: exactly once.

System accounts (funding, platform and tenant revenue) keep no counters: their balances are
the sums of their transfers, so the only row a reservation locks is the paying wallet's.

The writing verbs take one of three paths, which leave the same books (a differential test,
`tests/billing/test_ledger_paths.py`, holds them to it); `verbs.path_for` chooses:
- `portable` step by step, as above: always on SQLite, and on PostgreSQL for whatever the
  other two leave to it (accounts this process has not seen yet, repeats, refusals);
- `single`: on PostgreSQL a reservation and its settlement each take one statement doing the
  same steps in the same order; one round trip and no ORM work per verb is what keeps the hot
  path cheap (`bench/ledger_bench.py`);
- `batched`: inside a group commit's shared transaction (`Database.grouped`) on PostgreSQL,
  reservations, posts and voids only note what they do, and the end of the batch does it for
  all its units in three statements; anything it cannot do as asked rolls the batch back, and
  its units run alone on the paths above.

The package, a module per concern: `verbs` (the writing verbs, the choice of path), `portable`,
`single`, `batched` (the paths), `accounts` (codes, a tenant's accounts, customer and team
wallets, the process's cache of their flags), `reads` (balances, counters, expired
reservations), `errors`, `dialect`. Callers use this package's names (`from billing import
ledger`; `ledger.reserve`).
"""

from __future__ import annotations

from billing.ledger.accounts import (
    FUNDING,
    PLATFORM_REVENUE,
    SYSTEM_CODES,
    TENANT_REVENUE,
    TENANT_WALLET,
    account_id,
    customer_code,
    customer_wallet,
    open_team_wallet,
    open_tenant_accounts,
    team_code,
    team_wallet,
)

# The batch's resolutions statement, whose generic plan a test reads (tests/test_group_commit).
from billing.ledger.batched import _INSERT_RESOLUTIONS as _INSERT_RESOLUTIONS
from billing.ledger.batched import BatchRefused
from billing.ledger.errors import AlreadyResolved
from billing.ledger.reads import (
    Balance,
    Totals,
    balance,
    balances,
    customer_balances,
    expired_reservations,
    payer_available,
)
from billing.ledger.verbs import (
    Path,
    clawback,
    grant,
    limited_to,
    move,
    path_for,
    post,
    reserve,
    void,
)

__all__ = [
    "FUNDING",
    "PLATFORM_REVENUE",
    "SYSTEM_CODES",
    "TENANT_REVENUE",
    "TENANT_WALLET",
    "AlreadyResolved",
    "Balance",
    "BatchRefused",
    "Path",
    "Totals",
    "account_id",
    "balance",
    "balances",
    "clawback",
    "customer_balances",
    "customer_code",
    "customer_wallet",
    "expired_reservations",
    "grant",
    "limited_to",
    "move",
    "open_team_wallet",
    "open_tenant_accounts",
    "path_for",
    "payer_available",
    "post",
    "reserve",
    "team_code",
    "team_wallet",
    "void",
]
