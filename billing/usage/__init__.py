"""Usage rollups: per tenant, local day, customer, team, key, media type and provider, the
counts by status, the credits posted (from the ledger's transfers), the provider cost and a
latency histogram of every provider attempt (docs/analytics.md).

`models` (the tables), `latency` (the fixed log-spaced histogram), `rollup` (`rebuild`, the
periodic `refresh` and the reads of the analytics series' source rows).
"""
