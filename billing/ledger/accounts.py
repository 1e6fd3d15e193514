"""Accounts: their codes, a tenant's accounts and its customers' wallets, and what this process
knows of them.

Every tenant has a wallet (`TENANT_WALLET`, no overdraft) and three system accounts: `FUNDING`
(where granted credits come from; may go negative), `PLATFORM_REVENUE` and `TENANT_REVENUE`
(what reservations pay). System accounts keep no counters: their balances are the sums of their
transfers (`reads.py`). A tenant's customers each get a retail wallet, `customer:<id>`, opened
on first use.

Account ids and flags never change once created, so they are cached for the process; a
transfer takes the single-statement or batched path only between accounts whose flags are known
here (`known_wallet_paying_system`), and the portable path learns them (`is_system`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger.dialect import insert_ignoring_conflicts
from billing.models import Account
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import NotFound

TENANT_WALLET = "tenant_wallet"
FUNDING = "funding"
PLATFORM_REVENUE = "platform_revenue"
TENANT_REVENUE = "tenant_revenue"
SYSTEM_CODES = (FUNDING, PLATFORM_REVENUE, TENANT_REVENUE)


def customer_code(customer_id: str) -> str:
    return f"customer:{customer_id}"


def team_code(team_id: str) -> str:
    return f"team:{team_id}"


# Account ids and flags never change once created, so they are cached for the process.
_ids: dict[tuple[str, str], str] = {}
_system: dict[str, bool] = {}


async def open_tenant_accounts(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    """Create a tenant's wallet and its system accounts; called when a tenant is created.

    Returns `{code: account_id}`.
    """
    ids: dict[str, str] = {}
    for code in (TENANT_WALLET, *SYSTEM_CODES):
        system = code in SYSTEM_CODES
        account = Account(id=new_id("acc"), tenant_id=tenant_id, code=code,
                          no_overdraft=not system, system=system)
        session.add(account)
        ids[code] = account.id
    await session.flush()
    return ids


async def open_team_wallet(session: AsyncSession, tenant_id: str, team_id: str) -> str:
    """Open a team's wallet, `team:<id>` (no overdraft); called in the transaction that
    creates the team. Returns the account id. Not cached here: that transaction may still
    roll back; `account_id` learns it on first use once committed."""
    account = Account(id=new_id("acc"), tenant_id=tenant_id, code=team_code(team_id),
                      no_overdraft=True, system=False)
    session.add(account)
    await session.flush()
    return account.id


async def team_wallet(session: AsyncSession, tenant_id: str, team_id: str) -> str:
    """The team's wallet (opened with the team); `NotFound` when there is none."""
    return await account_id(session, tenant_id, team_code(team_id))


async def account_id(session: AsyncSession, tenant_id: str, code: str) -> str:
    """The id of a tenant's account by code; raises `NotFound` when it does not exist."""
    cached = _ids.get((tenant_id, code))
    if cached is not None:
        return cached
    row = (await session.execute(
        select(Account.id, Account.system)
        .where(Account.tenant_id == tenant_id, Account.code == code)
    )).first()
    if row is None:
        raise NotFound(f"no {code} account for this tenant", code="account_not_found")
    _ids[(tenant_id, code)] = row.id
    _system[row.id] = row.system
    return str(row.id)


async def customer_wallet(session: AsyncSession, tenant_id: str, customer_id: str) -> str:
    """The customer's retail wallet, opened on first use (safely under concurrency).

    A wallet this session opened is not cached: its transaction may still roll it back (a
    first generation refused by the empty wallet does), and a cached id of a row that never
    committed would break every later use of the wallet in this process.
    """
    code = customer_code(customer_id)
    if (tenant_id, code) in _ids:
        return _ids[(tenant_id, code)]
    opened = _opened_by(session)
    new = await session.scalar(
        insert_ignoring_conflicts(session, Account)
        .values(id=new_id("acc"), tenant_id=tenant_id, code=code, no_overdraft=True,
                system=False, debits_posted=0, credits_posted=0, debits_pending=0,
                credits_pending=0, created_at=utcnow())
        .on_conflict_do_nothing()
        .returning(Account.id)
    )
    if new is not None:
        opened.add(new)
        return str(new)
    found = await session.scalar(
        select(Account.id).where(Account.tenant_id == tenant_id, Account.code == code))
    assert found is not None  # the insert met it
    if found not in opened:  # committed by another transaction, not opened by this session
        _ids[(tenant_id, code)] = found
        _system[found] = False
    return str(found)


class _OpenedHere(set[str]):
    """The customer wallets a session opened itself (see `customer_wallet`)."""


def _opened_by(session: AsyncSession) -> set[str]:
    """The customer wallets this session opened, kept with the session (so with its
    transaction) in `session.info` under the private class `_OpenedHere`."""
    opened: _OpenedHere | None = session.info.get(_OpenedHere)
    if opened is None:
        opened = session.info[_OpenedHere] = _OpenedHere()
    return opened


async def is_system(session: AsyncSession, account: str) -> bool:
    """Whether `account` is a system account (learnt once, then cached); raises `NotFound`
    when there is no such account."""
    if account not in _system:
        flag = await session.scalar(select(Account.system).where(Account.id == account))
        if flag is None:
            raise NotFound("no such account", code="account_not_found")
        _system[account] = bool(flag)
    return _system[account]


def known_wallet_paying_system(debit: str, credit: str) -> bool:
    """Whether this process already knows `debit` is a wallet and `credit` a system account:
    what the single-statement and batched paths need (every reservation); accounts not seen
    yet take the portable path, which learns their flags."""
    return _system.get(debit) is False and bool(_system.get(credit))
