"""OpenAI chat completions as a text provider: media type `text`, operation `complete`.

`POST /v1/chat/completions` (JSON) with a system message (`params.system`, optional) and the
prompt as the user message; the answer's `choices[0].message.content` becomes one
`text/plain` output. Billed per token: `usage.prompt_tokens` and `usage.completion_tokens`
of the answer at the model's published per-1M-token prices, capped at the estimate.

The estimate must be an upper bound before the call, without a tokenizer: OpenAI's
tokenizers are byte-level BPE, so a message never takes more tokens than its UTF-8 bytes,
plus a few tokens of chat framing per message; the completion is bounded by
`max_completion_tokens`, which is always sent.

The HTTP helpers, error classification and health check are the image/speech provider's
(`plugins.builtin.openai`): one account, one error shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec

from plugins.builtin.openai import auth_headers, base_url, classify, models_health, per_million
from plugins.errors import InvalidParams, ProviderError
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Health,
    ModelSpec,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.vocabulary import ParamSpec, declare

CHAT_TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)

MODELS: Final = ("gpt-4o-mini", "gpt-4.1-mini", "gpt-4o")
DEFAULT_MODEL: Final = "gpt-4o-mini"
#: USD micros per 1M tokens, OpenAI's published standard-tier prices.
PRICES: Final[dict[str, int]] = {
    "gpt-4o-mini_input_per_1m_tokens": 150_000,
    "gpt-4o-mini_output_per_1m_tokens": 600_000,
    "gpt-4.1-mini_input_per_1m_tokens": 400_000,
    "gpt-4.1-mini_output_per_1m_tokens": 1_600_000,
    "gpt-4o_input_per_1m_tokens": 2_500_000,
    "gpt-4o_output_per_1m_tokens": 10_000_000,
}
DEFAULT_MAX_TOKENS: Final = 400
MAX_TOKENS: Final = 4096
MAX_PROMPT_CHARACTERS: Final = 16_000
#: Chat framing per message (role markers) and per reply, generously rounded up.
MESSAGE_OVERHEAD_TOKENS: Final = 8
REPLY_OVERHEAD_TOKENS: Final = 4
TEXT_CONTENT_TYPE: Final = "text/plain"


class ChatOptions(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    max_tokens: int
    temperature: float | None = None
    system: str | None = None


class ChatMessage(msgspec.Struct, kw_only=True):
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None


class ChatChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: ChatMessage
    finish_reason: str | None = None


class ChatUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str = ""
    object: str = "chat.completion"
    model: str = ""
    choices: list[ChatChoice] = msgspec.field(default_factory=list)
    usage: ChatUsage | None = None


def chat_options(request: ProviderRequest) -> ChatOptions:
    """Check a `complete` request; returns its options or raises `InvalidParams`."""
    if request.type != "text" or request.operation != "complete":
        raise InvalidParams("openai_chat makes text with the complete operation",
                            param="operation")
    if not request.prompt.strip():
        raise InvalidParams("a prompt is required", param="prompt")
    if len(request.prompt) > MAX_PROMPT_CHARACTERS:
        raise InvalidParams(f"the prompt takes at most {MAX_PROMPT_CHARACTERS} characters",
                            param="prompt")
    params = request.params
    model = params.get("model", DEFAULT_MODEL)
    if model not in MODELS:
        raise InvalidParams(f"model must be one of {', '.join(MODELS)}", param="params.model")
    max_tokens = params.get("max_tokens", DEFAULT_MAX_TOKENS)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not (
            1 <= max_tokens <= MAX_TOKENS):
        raise InvalidParams(f"max_tokens must be an integer from 1 to {MAX_TOKENS}",
                            param="params.max_tokens")
    temperature = params.get("temperature")
    if temperature is not None and (isinstance(temperature, bool) or not isinstance(
            temperature, int | float) or not 0 <= temperature <= 2):
        raise InvalidParams("temperature must be a number from 0 to 2",
                            param="params.temperature")
    system = params.get("system")
    if system is not None and not isinstance(system, str):
        raise InvalidParams("system must be a string", param="params.system")
    return ChatOptions(model=model, max_tokens=max_tokens,
                       temperature=None if temperature is None else float(temperature),
                       system=system or None)


def prompt_token_bound(options: ChatOptions, prompt: str) -> int:
    """The most prompt tokens the messages can take (byte-level BPE: at most one token per
    UTF-8 byte), framing included."""
    messages = [prompt] if options.system is None else [options.system, prompt]
    return (sum(len(text.encode()) + MESSAGE_OVERHEAD_TOKENS for text in messages)
            + REPLY_OVERHEAD_TOKENS)


def token_cost(prices: Mapping[str, int], model: str, prompt_tokens: int,
               completion_tokens: int) -> int:
    """USD micros of a call's tokens at `model`'s prices (each part rounded up)."""
    return (per_million(prompt_tokens, prices[f"{model}_input_per_1m_tokens"])
            + per_million(completion_tokens, prices[f"{model}_output_per_1m_tokens"]))


def chat_body(options: ChatOptions, prompt: str) -> dict[str, Any]:
    """The JSON body of `POST /chat/completions`."""
    messages = [] if options.system is None else [{"role": "system", "content": options.system}]
    messages.append({"role": "user", "content": prompt})
    body: dict[str, Any] = {"model": options.model, "messages": messages,
                            "max_completion_tokens": options.max_tokens, "n": 1}
    if options.temperature is not None:
        body["temperature"] = options.temperature
    return body


class OpenAIChat(Provider):
    """OpenAI's chat completions, for short texts (prompt suggestions and rewrites)."""

    name = "openai_chat"
    description = ("OpenAI chat completions (gpt-4o-mini, gpt-4.1-mini, gpt-4o): text, billed "
                   "per prompt and completion token.")
    media_types = frozenset({"text"})
    operations = frozenset({"complete"})
    models: ClassVar[Mapping[str, ModelSpec]] = {
        model: ModelSpec(operations=frozenset({"complete"}), params={"model": model})
        for model in MODELS}
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        "model": declare("model", choices=MODELS, default=DEFAULT_MODEL,
                         description="The chat model"),
        "max_tokens": ParamSpec(kind="integer", minimum=1, maximum=MAX_TOKENS,
                                default=DEFAULT_MAX_TOKENS,
                                description="The longest answer, in tokens (billed at most)"),
        "temperature": ParamSpec(kind="number", minimum=0, maximum=2,
                                 description="Randomness, 0 (focused) to 2 (varied)"),
        "system": ParamSpec(kind="string", max_length=4000,
                            description="Instructions the model follows (a system message)"),
    }
    param_defaults: ClassVar[Mapping[str, Any]] = {"model": DEFAULT_MODEL,
                                                   "max_tokens": DEFAULT_MAX_TOKENS}
    prices: Mapping[str, int] = PRICES

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Called before anything is reserved: the prompt's token bound and the whole
        `max_tokens` at the model's prices, in USD micros."""
        options = chat_options(request)
        return token_cost(self.prices, options.model,
                          prompt_token_bound(options, request.prompt), options.max_tokens)

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Calls `POST /chat/completions`; returns the reply as one `text/plain` output and
        the tokens OpenAI reports at the model's prices (at most the estimate)."""
        options = chat_options(request)
        response = await client.post(f"{base_url(credentials)}/chat/completions",
                                     headers=auth_headers(credentials),
                                     json=chat_body(options, request.prompt),
                                     timeout=CHAT_TIMEOUT)
        if response.status_code != 200:
            raise classify(response)
        try:
            answer = msgspec.json.decode(response.content, type=ChatCompletion)
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error("OpenAI answered with a body that is not a chat "
                                             "completion") from exc
        if not answer.choices:
            raise ProviderError.server_error("OpenAI answered without a choice")
        choice = answer.choices[0]
        if choice.message.refusal or choice.finish_reason == "content_filter":
            raise ProviderError.content_policy(
                f"OpenAI: {choice.message.refusal or 'the answer was filtered'}")
        if not choice.message.content:
            raise ProviderError.server_error("OpenAI answered with an empty message")
        estimate = self.estimate_cost(request)
        usage = answer.usage
        cost = estimate if usage is None else min(estimate, token_cost(
            self.prices, options.model, usage.prompt_tokens, usage.completion_tokens))
        return ProviderResult(outputs=[ProviderOutput(data=choice.message.content.encode(),
                                                      content_type=TEXT_CONTENT_TYPE)],
                              cost_usd_micros=cost)

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: lists the models (cheap, authenticated, free)."""
        return await models_health(credentials, client)

    def pricing(self) -> dict[str, Any]:
        """The price table (USD micros) and its units, for `GET /v1/providers`."""
        return {"usd_micros": dict(self.prices), "units": {"*": "per 1M tokens"}}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(OpenAIChat())
