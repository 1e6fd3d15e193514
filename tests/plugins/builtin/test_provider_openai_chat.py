"""The OpenAI chat provider against the fake OpenAI API (tests/fakes/openai.py): the contract,
what it sends, what it charges (tokens x price), and how errors are classified."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from plugins.builtin.openai_chat import PRICES, OpenAIChat, chat_options, prompt_token_bound
from plugins.errors import InvalidParams, ProviderError
from plugins.provider import Credentials, ProviderRequest, check_params
from plugins.testing import check_provider_contract
from tests.fakes import FakeServer, serve
from tests.fakes import openai as fake


def chat(prompt: str = "Three prompts about foxes", **params: object) -> ProviderRequest:
    return ProviderRequest(type="text", operation="complete", prompt=prompt, params=params)


@pytest.fixture
def state() -> fake.FakeOpenAI:
    return fake.FakeOpenAI()


@pytest.fixture
async def server(state: fake.FakeOpenAI) -> AsyncIterator[FakeServer]:
    async with serve(fake.app(state)) as running:
        yield running


@pytest.fixture
def creds(server: FakeServer) -> Credentials:
    return Credentials(api_key=fake.API_KEY, base_url=f"{server.url}/v1")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def test_it_keeps_the_provider_contract(creds: Credentials,
                                              client: httpx.AsyncClient) -> None:
    result = await check_provider_contract(
        OpenAIChat(), chat(model="gpt-4o-mini", max_tokens=100, temperature=0.4,
                           system="Be brief."), credentials=creds, client=client)
    assert result.outputs[0].content_type == "text/plain"


async def test_it_sends_chat_messages_and_charges_the_reported_tokens(
        server: FakeServer, state: fake.FakeOpenAI, creds: Credentials,
        client: httpx.AsyncClient) -> None:
    state.prompt_tokens, state.completion_tokens = 1000, 2000
    request = chat("رسمة قطة", model="gpt-4o", system="Answer in Arabic.", max_tokens=2500)
    result = await OpenAIChat().generate(request, creds, client)
    assert result.outputs[0].data.decode() == state.chat_reply
    # 1000 x $2.50/1M + 2000 x $10/1M = 2500 + 20000 micros.
    assert result.cost_usd_micros == 22_500
    (seen,) = server.to("/v1/chat/completions")
    assert seen.headers["authorization"] == f"Bearer {fake.API_KEY}"
    assert seen.json() == {"model": "gpt-4o", "max_completion_tokens": 2500, "n": 1,
                           "messages": [{"role": "system", "content": "Answer in Arabic."},
                                        {"role": "user", "content": "رسمة قطة"}]}


def test_the_estimate_bounds_prompt_bytes_and_max_tokens() -> None:
    request = chat("héllo", max_tokens=10)
    # Six UTF-8 bytes, one message's framing, the reply's.
    assert prompt_token_bound(chat_options(request), "héllo") == 6 + 8 + 4
    expected = (-(-18 * PRICES["gpt-4o-mini_input_per_1m_tokens"] // 1_000_000)
                + -(-10 * PRICES["gpt-4o-mini_output_per_1m_tokens"] // 1_000_000))
    assert OpenAIChat().estimate_cost(request) == expected


async def test_the_charge_never_exceeds_the_estimate(
        state: fake.FakeOpenAI, creds: Credentials, client: httpx.AsyncClient) -> None:
    state.prompt_tokens, state.completion_tokens = 10**6, 10**6
    request = chat("hi", max_tokens=5)
    result = await OpenAIChat().generate(request, creds, client)
    assert result.cost_usd_micros == OpenAIChat().estimate_cost(request)


@pytest.mark.parametrize(("status", "body", "code", "retryable"), [
    (401, fake.INVALID_API_KEY, "auth", False),
    (429, fake.INSUFFICIENT_QUOTA, "quota_exhausted", True),
    (429, fake.RATE_LIMITED, "rate_limited", True),
    (400, fake.CONTEXT_LENGTH, "invalid_input", False),
    (500, fake.SERVER_ERROR, "server_error", True),
])
async def test_errors_are_classified(state: fake.FakeOpenAI, creds: Credentials,
                                     client: httpx.AsyncClient, status: int,
                                     body: dict[str, object], code: str,
                                     retryable: bool) -> None:
    state.errors.append(fake.Scripted(status, body))
    with pytest.raises(ProviderError) as caught:
        await OpenAIChat().generate(chat(), creds, client)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


async def test_a_refusal_is_a_content_policy_error(
        state: fake.FakeOpenAI, creds: Credentials, client: httpx.AsyncClient) -> None:
    state.chat_refusal = "I can't help with that."
    with pytest.raises(ProviderError) as caught:
        await OpenAIChat().generate(chat(), creds, client)
    assert caught.value.code == "content_policy"


@pytest.mark.parametrize(("params", "param"), [
    ({"model": "gpt-3"}, "params.model"),
    ({"max_tokens": 0}, "params.max_tokens"),
    ({"temperature": 3}, "params.temperature"),
    ({"size": "1024x1024"}, "params.size"),
])
def test_bad_params_are_refused_before_pricing(params: dict[str, object], param: str) -> None:
    request = chat(**params)

    def checked() -> None:
        check_params(OpenAIChat(), request)
        OpenAIChat().validate(request)

    with pytest.raises(InvalidParams) as caught:
        checked()
    assert caught.value.param == param


def test_an_image_request_is_refused() -> None:
    with pytest.raises(InvalidParams):
        OpenAIChat().validate(ProviderRequest(type="image", operation="text_to_image",
                                              prompt="x"))
