"""The Litestar application factory: it only assembles."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from gateway.admin.analytics_routes import AdminAnalyticsController
from gateway.admin.breaker_routes import breaker_history
from gateway.admin.routes import AdminController
from gateway.analytics import tasks as analytics_tasks
from gateway.analytics.routes import AnalyticsController
from gateway.analytics.segment_routes import SegmentController
from gateway.brand_kits.routes import BrandKitController
from gateway.core.auth import provide_principal
from gateway.core.deps import provide_runtime
from gateway.core.edge import GatewayRequest, refuse_nul
from gateway.core.errors import document_errors, handle_exception
from gateway.core.examples import ExampleJson, ExampleSwagger
from gateway.core.health import HealthController
from gateway.core.jobs import run_periodic
from gateway.core.migrate import upgrade
from gateway.core.observe import wrap as observe_requests
from gateway.core.ratelimit import rate_limit_headers
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.core.storage.routes import MediaController
from gateway.core.timing import stamp_arrival
from gateway.credits.routes import (
    CreditsController,
    PackageController,
    PurchaseController,
    StripeWebhookController,
)
from gateway.generations import tasks
from gateway.generations.observed import metrics
from gateway.generations.routes import (
    GenerationController,
    ProviderController,
    SharedController,
)
from gateway.generations.services import Services
from gateway.generations.stream_routes import GenerationEventController, PushController
from gateway.generations.sweeps import recover_embedded
from gateway.generations.usage_routes import UsageController
from gateway.mcp.routes import media_generation_tools
from gateway.mcp.server import close_mcp, mcp_endpoint
from gateway.openai.routes import (
    ImagesController,
    ModelsController,
    SpeechController,
    VideosController,
)
from gateway.people.routes import (
    AuthController,
    SessionController,
    UserController,
    create_portal_session,
    update_users_me,
    users_me,
)
from gateway.portal.config import PortalConfigController, web_manifest
from gateway.portal.site import operator_page, portal_page, service_worker, static_router
from gateway.suggestions.routes import SuggestionController
from gateway.teams.routes import TeamController
from gateway.tenancy.key_customer_routes import CustomerController, KeyController
from gateway.tenancy.provider_key_routes import ProviderKeyController
from gateway.tenancy.tenant_routes import (
    AuditLogController,
    BrandAssetController,
    TenantSelfController,
    pricing_example_route,
)
from gateway.voices.routes import DesignTemplateController, VoiceController
from gateway.webhooks.routes import (
    WebhookEndpointController,
    replay_delivery,
    webhook_url_secret,
)
from gateway.webhooks.service import Webhooks
from plugins.host import PluginHost

log = logging.getLogger(__name__)


def provide_services(state: State, runtime: Runtime) -> Services:
    """The `services` dependency; it takes `runtime` (unused) to sit after it in the chain
    that `gateway.core.auth.provide_principal` explains."""
    services: Services = state.services
    return services


def provide_webhooks(services: Services) -> Webhooks:
    """The `webhooks` dependency: the process's webhook sender, for routes that queue a
    delivery (replay) and sit below the generations package that owns `Services`."""
    return services.webhooks


async def start_services(settings: Settings, *,
                         plugins: PluginHost | None = None) -> Services:
    """The API process's services with their tasks registered (also what tests start)."""
    services = await Services.start(settings, plugins=plugins)
    tasks.register(services)
    analytics_tasks.register(services.runtime)
    return services


def create_app(settings: Settings, *, plugins: PluginHost | None = None,
               services: Services | None = None) -> Litestar:
    """Build the gateway app. Embedded mode (SQLite) migrates its database on start.

    `plugins` replaces the discovered plugin host. A caller that passes its own started
    `services` (the tests) owns them: the app neither migrates, nor starts, nor closes them.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if services is not None:
            yield
            return
        if settings.is_sqlite:
            await asyncio.to_thread(upgrade, settings.database_url)
        owned = await start_services(settings, plugins=plugins)
        app.state.services, app.state.runtime = owned, owned.runtime
        if settings.embedded:
            await recover_embedded(owned)
        periodic = asyncio.create_task(run_periodic(owned.runtime.tasks))
        try:
            yield
        finally:
            periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await periodic
            await owned.close()

    handlers: list[Any] = [AdminController, AdminAnalyticsController, breaker_history,
                           AnalyticsController,
                           GenerationEventController, GenerationController,
                           PushController, ProviderController,
                           CreditsController, PurchaseController, StripeWebhookController,
                           HealthController, MediaController, metrics,
                           WebhookEndpointController, webhook_url_secret, replay_delivery,
                           ProviderKeyController, VoiceController, TeamController,
                           DesignTemplateController]
    handlers += [AuthController, SessionController, UserController, users_me, update_users_me,
                 create_portal_session]
    handlers += [KeyController, CustomerController, PackageController]
    handlers += [TenantSelfController, AuditLogController, BrandAssetController,
                 pricing_example_route]
    handlers += [ImagesController, SpeechController, ModelsController, VideosController]
    handlers += [UsageController, SegmentController]
    handlers += [BrandKitController]
    handlers += [SharedController]
    handlers += [SuggestionController]
    handlers += [mcp_endpoint, media_generation_tools]
    handlers += [PortalConfigController, web_manifest, portal_page, operator_page,
                 service_worker, static_router()]
    app = Litestar(
        route_handlers=handlers,
        # Plain attribute reads: synchronous, so Litestar resolves them inline (async
        # dependencies cost a task each on every request).
        dependencies={"runtime": Provide(provide_runtime, sync_to_thread=False),
                      "services": Provide(provide_services, sync_to_thread=False),
                      "webhooks": Provide(provide_webhooks, sync_to_thread=False),
                      "principal": Provide(provide_principal, sync_to_thread=False)},
        exception_handlers={Exception: handle_exception},
        request_class=GatewayRequest,
        before_request=refuse_nul,
        before_send=[rate_limit_headers],
        middleware=[stamp_arrival],
        lifespan=[lifespan],
        on_shutdown=[close_mcp],
        openapi_config=OpenAPIConfig(
            title="mediahub", version="0.1.0", path="/schema",
            description="Multi-tenant gateway for AI media generation. Errors share one shape: "
                        '{"error": {"type", "code", "message", "param"}}.',
            render_plugins=[ExampleSwagger(path="/"), ExampleJson()],
            # Each handler's docstring is its operation's description.
            use_handler_docstrings=True,
        ),
        debug=False,
        # Logging is the process's (gateway.core.logs): Litestar's default config would put
        # a second format on the root logger.
        logging_config=None,
    )
    document_errors(app)
    # Outside routing and the exception handlers, so every response has a request id and
    # is counted (an unrouted 404 too); Litestar's own OpenTelemetry plugin wraps here too.
    app.asgi_handler = observe_requests(app.asgi_handler)
    if services is not None:
        app.state.services, app.state.runtime = services, services.runtime
    return app
