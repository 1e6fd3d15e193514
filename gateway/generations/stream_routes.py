"""`GET /v1/generations/events` (server-sent events) and web push subscriptions (contract C2:
API.md; docs/usage.md "Live updates and web push"). Thin: each route calls one service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromQuery
from litestar.response import ServerSentEvent, ServerSentEventMessage

from gateway.core.auth import Principal, requires, with_team
from gateway.generations import push
from gateway.generations.events import Audience, GenerationEvents, Stream
from gateway.generations.services import ServicesDep
from tenants.kernel.errors import RateLimited


class _Comment(ServerSentEventMessage):
    """A comment line alone (Litestar's message adds an empty `data:`, which browsers
    dispatch as an empty `message` event)."""

    def encode(self) -> bytes:
        return f": {self.comment}\r\n\r\n".encode()


async def _messages(events: GenerationEvents, audience: Audience,
                    keepalive_s: float) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The stream's messages: each event the audience may see, and a keepalive comment
    after every `keepalive_s` without one. Ends when the client goes (the generator is
    closed), which closes the stream's registration."""
    stream: Stream
    try:
        async with events.stream(audience) as stream:
            # A first comment at once: the client knows the stream is open (and subscribed).
            yield _Comment(comment="connected")
            while True:
                try:
                    seq, event = await asyncio.wait_for(stream.queue.get(), keepalive_s)
                except TimeoutError:
                    yield _Comment(comment="keepalive")
                    continue
                yield ServerSentEventMessage(event="generation", id=seq,
                                             data=msgspec.json.encode(event).decode())
    except RateLimited:
        # Another stream took the tenant's last slot since the route checked (only entering
        # raises this): end at once; the browser reconnects later.
        yield _Comment(comment="too many streams")


class GenerationEventController(Controller):
    path = "/v1/generations/events"
    tags = ["generations"]

    @get("/", summary="Stream generation status changes (server-sent events)",
         guards=[requires("read")], media_type="text/event-stream")
    async def events(self, principal: Principal, services: ServicesDep,
                     team_id: FromQuery[str | None] = None) -> ServerSentEvent:
        """A `text/event-stream` of the caller's generations as they change: `event:
        generation`, `id: <generation id>:<seq>`, `data: {"id","status","progress","type",
        "team_id"}` for every status change (queued, running, succeeded, failed, canceled) and
        progress save. A customer (session or customer key) sees its own generations; with
        `X-Team-Id` or `?team_id=` (members only: 404 `team_not_found` otherwise) the team's;
        a tenant-wide key every generation of the tenant.

        A comment (`: connected`) opens the stream and `: keepalive` follows every
        `MEDIAHUB_EVENTS_KEEPALIVE_S` seconds (15) without an event. Delivery is best effort:
        after a reconnect, read the generations for their state. At most
        `MEDIAHUB_EVENTS_MAX_STREAMS_PER_TENANT` streams per tenant and API process are open at
        once: one more is `429 too_many_streams`.
        """
        principal = await with_team(services.runtime, principal, team_id)
        assert principal.tenant_id is not None
        audience = Audience(tenant_id=principal.tenant_id, customer_id=principal.customer_id,
                            team_id=principal.team_id)
        events = services.events
        # Refuse over the limit now, as a JSON 429, rather than inside an opened stream.
        events.check_room(principal.tenant_id)
        return ServerSentEvent(_messages(events, audience,
                                         services.runtime.settings.events_keepalive_s),
                               headers={"Cache-Control": "no-store",
                                        "X-Accel-Buffering": "no"})


class PushController(Controller):
    path = "/v1"
    tags = ["push"]

    @get("/push/key", summary="The web push (VAPID) public key", guards=[requires()])
    async def key(self, services: ServicesDep) -> push.PushKey:
        """The application server key to pass to `PushManager.subscribe`
        (`applicationServerKey`), base64url. `404 push_disabled` when the server has no VAPID
        key pair (`MEDIAHUB_VAPID_PUBLIC_KEY` / `MEDIAHUB_VAPID_PRIVATE_KEY`)."""
        return push.public_key(services.runtime.settings)

    @post("/push_subscriptions", status_code=201, summary="Subscribe a browser to web push",
          guards=[requires("read")])
    async def subscribe(self, principal: Principal, services: ServicesDep,
                        data: push.PushSubscriptionCreate) -> push.PushSubscriptionOut:
        """Store a browser's push subscription (`PushSubscription.toJSON()`: `endpoint` and
        `keys.p256dh`, `keys.auth`) for the caller's customer; subscribing the same endpoint
        again refreshes its keys. When one of the customer's generations succeeds or fails,
        each subscription receives `{"title","body","url":"/gallery/<id>"}` (encrypted,
        `aes128gcm`, VAPID-signed). `422 customer_required` without a customer, `422
        invalid_push_keys` for malformed keys, `422 url_not_allowed` for an endpoint that is
        not public, `404 push_disabled` when web push is off."""
        return await push.subscribe(services.runtime, principal, data)

    @delete("/push_subscriptions", status_code=200,
            summary="Unsubscribe a browser from web push", guards=[requires("read")])
    async def unsubscribe(self, principal: Principal, services: ServicesDep,
                          endpoint: FromQuery[str]) -> push.PushSubscriptionDeleted:
        """Forget the caller's customer's subscription of `endpoint` (404 when it has none)."""
        return await push.unsubscribe(services.runtime, principal, endpoint)
