"""The Litestar application factory: it only assembles."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from gateway.admin.routes import AdminController
from gateway.core.deps import provide_runtime
from gateway.core.health import HealthController
from gateway.core.http import handle_exception
from gateway.core.media import MediaController
from gateway.core.migrate import upgrade
from gateway.core.ratelimit import rate_limit_headers
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.credits.purchases import PurchaseController, StripeWebhookController
from gateway.credits.routes import CreditsController
from gateway.generations.routes import GenerationController, ProviderController
from gateway.generations.worker import recover_embedded
from gateway.portal.routes import portal_home
from gateway.tenancy.provider_keys import ProviderKeyController
from gateway.webhooks.routes import WebhookEndpointController, webhook_url_secret
from gateway.worker import sweep_forever
from plugins.host import PluginHost

log = logging.getLogger(__name__)

def create_app(settings: Settings, *, plugins: PluginHost | None = None,
               runtime: Runtime | None = None) -> Litestar:
    """Build the gateway app. Embedded mode (SQLite) migrates its database on start.

    `plugins` replaces the discovered plugin host. A caller that passes its own started
    `runtime` (the tests) owns it: the app neither migrates, nor starts, nor closes it.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if runtime is not None:
            yield
            return
        if settings.is_sqlite:
            await asyncio.to_thread(upgrade, settings.database_url)
        owned = await Runtime.start(settings, plugins=plugins)
        app.state.runtime = owned
        if settings.embedded:
            await recover_embedded(owned)
        sweeper = asyncio.create_task(sweep_forever(owned))
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await owned.close()

    handlers: list[Any] = [AdminController, GenerationController, ProviderController,
                           CreditsController, PurchaseController, StripeWebhookController,
                           HealthController, MediaController, portal_home,
                           WebhookEndpointController, webhook_url_secret,
                           ProviderKeyController]
    app = Litestar(
        route_handlers=handlers,
        dependencies={"runtime": Provide(provide_runtime)},
        exception_handlers={Exception: handle_exception},
        before_send=[rate_limit_headers],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="mediahub", version="0.1.0", path="/schema",
            description="Multi-tenant gateway for AI media generation. Errors share one shape: "
                        '{"error": {"type", "code", "message", "param"}}.',
            render_plugins=[SwaggerRenderPlugin(path="/")],
        ),
        debug=False,
    )
    if runtime is not None:
        app.state.runtime = runtime
    return app
