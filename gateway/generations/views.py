"""The one view of a generation: what REST, webhooks (and the OpenAI-compatible and MCP
surfaces) show of it, with freshly signed output URLs."""

from __future__ import annotations

from gateway.core.runtime import Runtime
from gateway.generations.models import Generation
from gateway.generations.schemas import Attempt, Cost, ErrorInfo, GenerationOut, Output


async def render(runtime: Runtime, generation: Generation) -> GenerationOut:
    """The API view of a generation, with freshly signed output URLs."""
    outputs = []
    for item in generation.outputs:
        url = await runtime.storage.signed_url(
            item.key, expires_in_s=runtime.settings.media_url_ttl_s,
            base_url=runtime.settings.public_base_url)
        outputs.append(Output(url=url, content_type=item.content_type, bytes=item.bytes,
                              width=item.width, height=item.height,
                              duration_s=item.duration_s))
    error = generation.error
    return GenerationOut(
        id=generation.id, type=generation.type, operation=generation.operation,
        status=generation.status, provider=generation.provider, cached=generation.cached,
        cost=Cost(estimated=generation.estimated_mc, charged=generation.charged_mc),
        outputs=outputs,
        error=ErrorInfo(code=error.code, message=error.message) if error else None,
        metadata=generation.metadata_, created_at=generation.created_at,
        started_at=generation.started_at, completed_at=generation.completed_at,
        attempts=[Attempt(provider=a.provider, outcome=a.outcome, error_code=a.error_code,
                          latency_ms=a.latency_ms, retry_after_s=a.retry_after_s)
                  for a in generation.attempts_log or []],
    )
