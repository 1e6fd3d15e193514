"""`GET /v1/usage` (issue #16): thin; gateway/generations/usage.py sums."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter, QueryParameter

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep
from gateway.generations import usage
from tenants.kernel.db import utcnow

Moment = Annotated[str | None, Parameter(max_length=40, required=False)]


class UsageController(Controller):
    path = "/v1/usage"
    tags = ["usage"]

    @get("/", summary="Usage: generation counts and credits, grouped", guards=[requires()])
    async def read(self, principal: Principal, runtime: RuntimeDep,
                   group_by: Annotated[str | None, Parameter(max_length=100,
                                                             required=False)] = None,
                   from_: Annotated[str | None, QueryParameter(name="from", max_length=40,
                                                          required=False)] = None,
                   to: Moment = None) -> usage.UsageList:
        """Counts (`count`, `succeeded`, `failed`) and `charged_mc` (millicredits charged:
        succeeded generations, cached answers included) of the caller's generations created
        in `[from, to)`.

        `group_by`: comma-separated, any of `key`, `day` (UTC, `YYYY-MM-DD`), `type`,
        `provider`, `customer`, `status` (else 422 `invalid_group_by`); none gives one total
        row. `from`/`to`: ISO 8601 dates or date-times, UTC unless they carry an offset, `to`
        exclusive; default the current calendar month; at most 366 days (422 `invalid_range`).

        Whose: a tenant-wide key with `billing` or `tenant_admin`, or an owner/admin/billing
        session, sees the whole tenant (`scope: tenant`); a customer key (or `X-Customer-Id`,
        or a portal customer) its customer's, at retail prices and with the provider names it
        is shown elsewhere (`scope: customer`); any other key with `read` its own key's
        generations (`scope: key`). Developer and viewer sessions: 403 `usage_forbidden`.
        """
        query = usage.parse(group_by, from_, to, now=utcnow())
        return await usage.usage(runtime, principal, query)
