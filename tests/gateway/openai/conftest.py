"""The gateway served over real HTTP (uvicorn on a loopback port) for the official `openai`
client. The sync client runs in a thread (`asyncio.to_thread`): the server shares the test's
event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
import pytest

from gateway.core.settings import Settings
from tests.conftest import Gateway, Tenant, running_gateway
from tests.fakes import serve


@dataclass
class Served:
    gw: Gateway
    url: str

    def sync(self, tenant: Tenant | str) -> openai.OpenAI:
        key = tenant if isinstance(tenant, str) else tenant.key
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def aio(self, tenant: Tenant | str) -> openai.AsyncOpenAI:
        key = tenant if isinstance(tenant, str) else tenant.key
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with running_gateway(settings) as gw, serve(gw.app) as server:
        yield Served(gw=gw, url=server.url)
