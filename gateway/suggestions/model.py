"""Suggestions written by the tenant's text model (`TenantSuggestions.model`).

Each ask is a real text generation submitted through the normal pipeline as the caller:
priced, reserved, charged to the caller's wallet, shown in its gallery and usage as type
`text`. The suggestion request waits for it at most `TenantSuggestions.wait_ms`; whatever
goes wrong (no `generate` scope, too few credits, a provider error, no answer in time) is
`ModelFailed` with a code, and the caller answers with the rule-based suggestions alone.
"""

from __future__ import annotations

import re
import time
from typing import Final

from gateway.core.auth import Principal
from gateway.generations import service as generations
from gateway.generations import submit
from gateway.generations.models import FINAL_STATES, SUCCEEDED
from gateway.generations.schemas import GenerationCreate
from gateway.generations.services import Services
from tenants.kernel.errors import DomainError
from tenants.schemas import TenantSuggestions

#: The longest answer asked for, in tokens (a few short prompts).
MAX_TOKENS: Final = 300
MAX_LINES: Final = 5
_BULLET: Final = re.compile(r"^\s*(?:[-*•·]|\d+[.)]|[٠-٩]+[.)])\s*")
LANGUAGE_NAMES: Final = {"en": "English", "ar": "Arabic"}


class ModelFailed(Exception):
    """The model gave no usable answer; `code` says why (`timeout`, `insufficient_credits`,
    a provider error code, ...)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def lines(answer: str) -> list[str]:
    """The suggestions of a model's answer: one per line, bullets, numbers and quotes
    removed, empty lines skipped, at most `MAX_LINES`."""
    found: list[str] = []
    for line in answer.splitlines():
        text = _BULLET.sub("", line).strip().strip("\"'“”«»").strip()
        if text and text not in found:
            found.append(text)
    return found[:MAX_LINES]


async def ask(services: Services, principal: Principal, setting: TenantSuggestions, *,
              system: str, prompt: str) -> list[str]:
    """Called by the suggestion service when the tenant enabled a model: submits one text
    generation as `principal` and waits for it; returns the answer's lines. Raises
    `ModelFailed` on any failure (the generation, once submitted, still ends and is billed
    as any other)."""
    assert setting.model is not None
    if "generate" not in principal.scopes:
        raise ModelFailed("missing_scope")
    provider, _, model = setting.model.partition(":")
    body = GenerationCreate(type="text", operation="complete", prompt=prompt,
                            provider=provider,
                            params={"model": model, "max_tokens": MAX_TOKENS,
                                    "system": system},
                            metadata={"purpose": "suggestions"})
    deadline = time.monotonic() + setting.wait_ms / 1000
    try:
        generation = await submit.submit(services, principal, body, idempotency_key=None)
        while generation.status not in FINAL_STATES and time.monotonic() < deadline:
            generation = await generations.wait_until_final(
                services, principal, generation, deadline - time.monotonic())
    except DomainError as exc:
        raise ModelFailed(exc.code) from exc
    if generation.status not in FINAL_STATES:
        raise ModelFailed("timeout")
    if generation.status != SUCCEEDED or not generation.outputs:
        raise ModelFailed(generation.error.code if generation.error else generation.status)
    raw, _ = await services.runtime.storage.get(generation.outputs[0].key)
    found = lines(raw.decode("utf-8", errors="replace"))
    if not found:
        raise ModelFailed("empty_answer")
    return found
