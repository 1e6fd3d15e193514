"""`/v1/suggestions` (docs/suggestions.md). Thin: the service does it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.params import HeaderParameter, Parameter, QueryParameter

from gateway.core.auth import Principal, requires
from gateway.core.deps import page_limit
from gateway.generations.services import ServicesDep
from gateway.suggestions import service, trends
from gateway.suggestions.schemas import (
    Improvement,
    ImproveRequest,
    Language,
    SuggestionList,
    SuggestionType,
    Trends,
)

AcceptLanguage = Annotated[str | None, HeaderParameter(
    name="Accept-Language", required=False, max_length=512,
    description="Picks en or ar when neither `lang` nor the user's own locale does")]


class SuggestionController(Controller):
    path = "/v1/suggestions"
    tags = ["suggestions"]

    @get("/", summary="Prompt suggestions for a media type", guards=[requires("read")])
    async def list_(self, principal: Principal, services: ServicesDep,
                    type: SuggestionType,
                    accept_language: AcceptLanguage = None,
                    context: Annotated[str, Parameter(
                        max_length=1000, description="What the user has typed so far: "
                                                     "suggestions are ranked by it")] = "",
                    lang: Annotated[Language | None, Parameter(
                        description="en or ar (default: the user's locale, then "
                                    "Accept-Language, then en)")] = None,
                    limit: Annotated[int | None, Parameter(
                        description="How many (1-20, default 8)")] = None,
                    model: Annotated[bool, Parameter(
                        description="false: never ask the tenant's text model (free; for "
                                    "suggestions refreshed as the user types)")] = True,
                    ) -> SuggestionList:
        """Curated templates (`source: template`) in `lang`, the caller's own prompts that
        succeeded (`history`: a customer's own and its current team's, the tenant's for
        staff and tenant keys; never another tenant's) in the language they were written
        in, and, when the tenant enabled a text model, model-written ones (`model`: a text
        generation charged to the caller). Ranked by BM25 relevance to `context` (`score`
        0..1, 0 without a context). When the model fails, the others are answered with
        `model_error` set to its code; `model=false` leaves the model out."""
        chosen = await service.language(services.runtime, principal, lang, accept_language)
        return await service.suggest(services, principal, media_type=type, context=context,
                                     lang=chosen, limit=page_limit(limit, default=8,
                                                                   maximum=20),
                                     use_model=model)

    @post("/improve", status_code=200, summary="What a prompt is missing, and rewrites",
          guards=[requires("read")])
    async def improve(self, principal: Principal, services: ServicesDep,
                      data: ImproveRequest, accept_language: AcceptLanguage = None,
                      ) -> Improvement:
        """Rule-based check of `prompt` for its media type: image subject, style, lighting,
        composition, colour; video also camera motion and pacing; 3D material; speech end
        punctuation, long sentences without pauses, numbers and abbreviations to spell
        out; design headline length and call to action. `missing` lists each lacking
        aspect with a message in the request's language; `variants` holds up to three
        rewrites filling them (`source: rules`), plus the tenant model's (`source: model`)
        when one is enabled. Nothing is charged unless the tenant's model is asked."""
        chosen = await service.language(services.runtime, principal, data.lang,
                                        accept_language)
        return await service.improve(services, principal, data, chosen)

    @get("/trends", summary="Most used types, styles and parameters, and when",
         guards=[requires("read")])
    async def trends_(self, principal: Principal, services: ServicesDep,
                      # `scope` is Litestar's reserved name for the ASGI scope.
                      which: Annotated[Literal["me", "tenant"], QueryParameter(
                          name="scope", required=False,
                          description="me (default): the caller's own generations; tenant: "
                                      "the whole tenant's (staff and tenant keys only)",
                      )] = "me",
                      start: Annotated[datetime | None, QueryParameter(
                          name="from", required=False, description="Start (default: 30 days before "
                                                    "`to`)")] = None,
                      end: Annotated[datetime | None, QueryParameter(
                          name="to", required=False,
                          description="End, exclusive (default: now)")] = None,
                      ) -> Trends:
        """Counts over the range (at most 366 days; the latest 10,000 generations): media
        types, style words found in prompts (`styles`, a fixed English/Arabic vocabulary),
        parameter values (size, voice, duration_s, ...), generations by hour of day (0-23)
        and by weekday (Mon-Sun) in the tenant's time zone (`time_zone`). `403 staff_only`
        for `scope=tenant` from a customer."""
        return await trends.trends(services.runtime, principal, scope=which, start=start,
                                   end=end)
