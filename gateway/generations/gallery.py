"""The gallery's actions on finished generations (docs/gallery.md): delete (and the job that
removes the media afterwards), favourite, bulk actions, a zip of several, share links.

Every action reads the generation through `service.get`, so it is scoped like a read: another
tenant's, customer's or team's generation, or a deleted one, is 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import Text, cast, literal_column, or_, select, update

from gateway.core.auth import Principal
from gateway.core.ratelimit import Rate
from gateway.core.runtime import Runtime
from gateway.generations import jobs, service
from gateway.generations.models import FINAL_STATES, Generation
from gateway.generations.schemas import (
    BulkError,
    BulkRequest,
    BulkResult,
    BulkResults,
    Share,
    SharedGeneration,
)
from gateway.generations.services import Services
from gateway.generations.views import Audience, plain_params, render
from tenants import service as tenants
from tenants.kernel.db import utcnow
from tenants.kernel.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    RateLimited,
)

log = logging.getLogger(__name__)

MAX_ARCHIVE_IDS = 100


def _may_change(principal: Principal) -> None:
    """A team's viewer sees its generations and changes none (docs/teams.md)."""
    if principal.team_role == "viewer":
        raise PermissionDenied("a viewer sees the team's generations and cannot change them",
                               code="team_viewer")


# --- delete -------------------------------------------------------------------------------

async def delete(services: Services, principal: Principal, generation_id: str) -> None:
    """Delete one of the caller's finished generations; called by `DELETE
    /v1/generations/{id}` and bulk deletes.

    Marks it deleted in one statement that also checks it is final and not yet deleted, so of
    two concurrent deletes one wins and the other finds nothing (404). From then on every
    surface omits it; a job removes its media. Its ledger entries stay (money was settled).
    409 `generation_active` while queued or running (cancel it first); 403 `team_viewer` for
    a team's viewer.
    """
    _may_change(principal)
    generation = await service.get(services, principal, generation_id, shared=False)
    async with services.runtime.db.transaction() as session:
        marked = await session.execute(
            update(Generation)
            .where(Generation.id == generation.id, Generation.tenant_id == principal.tenant,
                   Generation.deleted_at.is_(None), Generation.status.in_(FINAL_STATES))
            .values(deleted_at=utcnow()))
    if getattr(marked, "rowcount", 0) != 1:
        # Deleted meanwhile (a concurrent delete): 404, as for any deleted one; else active.
        current = await service.get(services, principal, generation_id, shared=False)
        raise Conflict(f"the generation is {current.status}; cancel it before deleting it",
                       code="generation_active", param="id")
    try:
        await jobs.enqueue_purge(services.runtime, generation.id, generation.type)
    except Exception:
        # Deleted all the same (committed above); the periodic sweep queues the purge later.
        log.warning("could not queue the purge of a deleted generation", exc_info=True,
                    extra={"generation_id": generation.id})


async def purge_media(runtime: Runtime, generation_id: str) -> int:
    """The purge job of a deleted generation: remove its stored outputs and whatever was
    derived from them under the same folder (`<tenant>/<generation id>/`); returns how many
    files went.

    Outputs can be shared: a cached answer and a coalesced follower reuse the stored
    outputs of the generation that made them. A folder is only removed once no generation
    that is not deleted refers to a file in it, so the last one deleted removes it.
    """
    async with runtime.db.session() as session:
        gone = await session.scalar(select(Generation).where(Generation.id == generation_id))
        if gone is None or gone.deleted_at is None:
            return 0
        folders = {_folder(item.key) for item in gone.outputs or []}
        folders.add(f"{gone.tenant_id}/{gone.id}")
        owners = [folder.split("/", 1)[1] for folder in folders if "/" in folder]
        sharing = or_(Generation.id.in_(owners), Generation.coalesced_from.in_(owners))
        if gone.fingerprint is not None:
            sharing = or_(sharing, Generation.fingerprint == gone.fingerprint)
        live = await session.scalars(
            select(Generation).where(Generation.tenant_id == gone.tenant_id,
                                     Generation.deleted_at.is_(None), sharing))
        kept = {_folder(item.key) for other in live for item in other.outputs or []}
    removed = 0
    for folder in sorted(folders - kept):
        removed += await runtime.storage.delete_prefix(folder)
    async with runtime.db.transaction() as session:
        # Done: a deleted row with outputs is one whose purge is still to run (the sweep
        # below requeues those). Files kept for a sharer go with the sharer's own purge.
        await session.execute(update(Generation).where(Generation.id == gone.id)
                              .values(outputs=[]))
    log.info("removed %d media files of deleted generation", removed,
             extra={"generation_id": generation_id})
    return removed


async def requeue_purges(runtime: Runtime, *, limit: int = 100) -> int:
    """Queue the purge again for deleted generations whose media is still listed (the job
    was lost: an embedded process stopped before running it); returns how many. Periodic
    (`gateway.generations.tasks`); a purge that runs twice removes nothing more."""
    stale = utcnow() - timedelta(seconds=runtime.settings.sweep_interval_s)
    async with runtime.db.session() as session:
        rows = (await session.execute(
            select(Generation.id, Generation.type)
            # A constant, not a parameter: the partial ix_generations_purge_pending
            # matches only a predicate it can prove at planning time.
            .where(Generation.deleted_at.is_not(None), Generation.deleted_at < stale,
                   cast(Generation.outputs, Text) != literal_column("'[]'"))
            .limit(limit))).all()
    for generation_id, media_type in rows:
        await jobs.enqueue_purge(runtime, generation_id, media_type)
    return len(rows)


def _folder(key: str) -> str:
    # Outputs are stored as `<tenant>/<generation id>/<n>.<ext>` (worker._store).
    return key.rsplit("/", 1)[0]


# --- favourite ------------------------------------------------------------------------------

async def set_favourite(services: Services, principal: Principal, generation_id: str,
                        favourite: bool) -> Generation:
    """Mark or unmark one of the caller's generations as a favourite (idempotent); returns
    it as it now is. 403 `team_viewer` for a team's viewer."""
    _may_change(principal)
    generation = await service.get(services, principal, generation_id, shared=False)
    async with services.runtime.db.transaction() as session:
        await session.execute(
            update(Generation)
            .where(Generation.id == generation.id, Generation.tenant_id == principal.tenant,
                   Generation.deleted_at.is_(None))
            .values(favourite=favourite))
    return await service.get(services, principal, generation_id, shared=False)


# --- bulk -----------------------------------------------------------------------------------

async def bulk(services: Services, principal: Principal, body: BulkRequest) -> BulkResults:
    """Apply one action to up to 100 generations, each as its own call would (scoped, in
    its own transaction): one failing does not stop the others. Returns a result per id,
    in order (a repeated id is answered once per time it was given)."""
    results: list[BulkResult] = []
    for generation_id in body.ids:
        try:
            if body.action == "delete":
                await delete(services, principal, generation_id)
            else:
                await set_favourite(services, principal, generation_id,
                                    body.action == "favourite")
        except DomainError as error:
            results.append(BulkResult(id=generation_id, ok=False,
                                      error=BulkError(code=error.code, message=error.message)))
        else:
            results.append(BulkResult(id=generation_id, ok=True))
    return BulkResults(results=results)


# --- archive --------------------------------------------------------------------------------

class _Chunks:
    """A write-only file for `zipfile` that hands what it was given to the generator
    streaming the archive (zipfile writes data descriptors to a stream it cannot seek)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def archive_name(generation: Generation, index: int, key: str) -> str:
    """`<generation id>-<n>.<ext>` (n from 1), the extension of the stored file."""
    last = key.rsplit("/", 1)[-1]
    extension = last.rsplit(".", 1)[-1] if "." in last else "bin"
    return f"{generation.id}-{index + 1}.{extension}"


async def archive_generations(services: Services, principal: Principal,
                              ids: Iterable[str]) -> list[Generation]:
    """The generations of a zip, in the order asked, checked before the response starts (so
    an unknown id is a 404 response, not a broken download); duplicates once."""
    found: list[Generation] = []
    seen: set[str] = set()
    for generation_id in ids:
        if generation_id in seen:
            continue
        seen.add(generation_id)
        found.append(await service.get(services, principal, generation_id))
    return found


async def archive(runtime: Runtime, generations: list[Generation]) -> AsyncIterator[bytes]:
    """The zip of `generations`' outputs, streamed: each file is read from storage, written
    and handed on before the next is read, so memory holds one output at a time whatever
    the count. Ends with `generations.json` (id, type, prompt, params, created_at, names)."""
    sink = _Chunks()
    index: list[dict[str, Any]] = []
    # Stored, not deflated: images, audio and video are compressed already.
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as zipped:
        for generation in generations:
            names: list[str] = []
            for n, item in enumerate(generation.outputs or []):
                try:
                    data, _ = await runtime.storage.get(item.key)
                except Exception:
                    # Its media went (deleted meanwhile, or lost): the rest still downloads.
                    log.warning("archive: output missing", extra={"generation_id": generation.id})
                    continue
                name = archive_name(generation, n, item.key)
                with zipped.open(name, mode="w", force_zip64=True) as member:
                    member.write(data)
                del data
                names.append(name)
                yield sink.take()
            index.append({"id": generation.id, "type": generation.type,
                          "prompt": generation.prompt,
                          "params": plain_params(generation.params),
                          "created_at": generation.created_at.isoformat(),
                          "outputs": names})
        zipped.writestr("generations.json", msgspec.json.format(msgspec.json.encode(index)))
    yield sink.take()


# --- share links ----------------------------------------------------------------------------

#: Public share views a client address may open per minute (burst as many).
SHARED_VIEWS_PER_MINUTE = 120


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret_key: bytes, payload: str) -> bytes:
    # Its own context string: a share token is never valid as any other signed value.
    return hmac.new(secret_key, b"mediahub-share\n" + payload.encode(), hashlib.sha256).digest()


def share_token(secret_key: bytes, *, tenant_id: str, generation_id: str,
                expires: int) -> str:
    """`<payload>.<signature>`, both base64url: the payload names the generation, its tenant
    and the unix time the link expires; the signature is HMAC-SHA256 under the secret key."""
    payload = _b64(f"{generation_id}|{tenant_id}|{expires}".encode())
    return f"{payload}.{_b64(_signature(secret_key, payload))}"


def read_token(secret_key: bytes, token: str, *, now: float) -> tuple[str, str] | None:
    """(tenant id, generation id) of a valid, unexpired token; None for anything else."""
    payload, _, signature = token.partition(".")
    try:
        given = _unb64(signature)
        tenant_generation_expires = _unb64(payload).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(_signature(secret_key, payload), given):
        return None
    parts = tenant_generation_expires.split("|")
    if len(parts) != 3 or not parts[2].isascii() or not parts[2].isdigit():
        return None
    generation_id, tenant_id, expires = parts
    if int(expires) < now:
        return None
    return tenant_id, generation_id


async def share(services: Services, principal: Principal, generation_id: str, *,
                expires_in_s: int, origin: str) -> Share:
    """A link anyone can open to see one of the caller's generations until it expires;
    called by `POST /v1/generations/{id}/share`. Stateless: nothing is stored, so a link
    cannot be revoked but dies with the generation (deleting it makes the link 404)."""
    generation = await service.get(services, principal, generation_id)
    expires = int(time.time()) + expires_in_s
    token = share_token(services.runtime.settings.secret_key, tenant_id=generation.tenant_id,
                        generation_id=generation.id, expires=expires)
    return Share(url=f"{origin.rstrip('/')}/shared/{token}", token=token,
                 expires_at=datetime.fromtimestamp(expires, UTC))


async def shared(runtime: Runtime, token: str, *, host: str | None,
                 ip: str) -> SharedGeneration:
    """What a share link shows (public: prompt and outputs, freshly signed); called by
    `GET /v1/shared/{token}`. 404 for a bad or expired token, a deleted generation, or a
    token of another tenant than the one whose domain the request came through; 429 past
    `SHARED_VIEWS_PER_MINUTE` per client address."""
    limiter = runtime.limiter
    decision = await limiter.take([f"{limiter.prefix}:shared:ip:{ip}"],
                                  [Rate(SHARED_VIEWS_PER_MINUTE, SHARED_VIEWS_PER_MINUTE)])
    if not decision.allowed and decision.binding is not None:
        raise RateLimited("too many shared views; retry after the time in Retry-After",
                          retry_after_s=max(1, -(-decision.binding.retry_us // 1_000_000)))
    missing = NotFound("no such shared generation", code="share_not_found", param="token")
    found = read_token(runtime.settings.secret_key, token, now=time.time())
    if found is None:
        raise missing
    tenant_id, generation_id = found
    base_url = runtime.settings.public_base_url
    platform = urlsplit(base_url)
    if host and host.lower() != (platform.netloc or "").lower():
        async with runtime.db.session() as session:
            owner = await tenants.tenant_for_host(session, host)
        if owner is not None:
            if owner.id != tenant_id:
                raise missing  # a link of one reseller's never opens on another's domain
            base_url = f"{platform.scheme}://{host.strip().lower()}"
    async with runtime.db.session() as session:
        generation = await session.scalar(select(Generation).where(
            Generation.id == generation_id, Generation.tenant_id == tenant_id,
            Generation.deleted_at.is_(None)))
    if generation is None:
        raise missing
    # The outputs as render shows them (links signed afresh, on the host asked through).
    shown = await render(runtime, generation, Audience(base_url=base_url, customer=True))
    return SharedGeneration(id=generation.id, type=generation.type, prompt=generation.prompt,
                            outputs=shown.outputs, created_at=generation.created_at)
