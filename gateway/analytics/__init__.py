"""Analytics (issue #15): the tenant's, a customer's and the operator's series, read from the
usage rollups (`billing.usage`), as JSON or CSV (docs/analytics.md).

`schemas` (the envelope), `query` (the common query parameters), `service` (the series),
`csv` (the CSV renderer), `routes` (the tenant's and the customer's routes; the operator's
are in `gateway.admin.analytics_routes`), `tasks` (the periodic rollup refresh).
"""
