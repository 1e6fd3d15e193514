"""Routing: per-provider statistics, a circuit breaker per provider, and the ranking of the
providers that can serve a request. Pure maths, in four modules (nothing is re-exported here):

- `breaker`: `CircuitBreaker` and its states;
- `stats`: `ProviderStats` (what one process knows of one provider) and `RoutingConfig`;
- `policy`: the strategies and `Weights`, what a tenant's routing policy holds;
- `rank`: the scores and `rank`.

Everything here is pure and deterministic given its inputs: time is always a parameter
(`now`, in seconds on one clock; the gateway uses epoch seconds so that state written by one
process means the same in another), nothing reads settings, the database or the environment.
The gateway keeps one `ProviderStats` per provider and credential (the platform's key, or one
tenant's own) per process (gateway/providers/states.py), mirrors it to the database, and calls
`rank` with the stats of the credentials the request's tenant would use.

Scores (DESIGN "Providers"), each normalised to 0..1 with 1 the best:

- cost efficiency: `(cheapest + 1) / (cost + 1)` over the candidates' estimates (USD micros);
- speed: `fastest / latency`, latency being the decayed EWMA of observed call latency
  (a provider never observed counts as the mean of the observed ones);
- load: `1 - in_flight / capacity` (0 at or over capacity);
- availability: `1 - error_rate` (decayed EWMA of failures), halved while half-open.

Strategies: `cheapest` (cost, then load), `fastest` (latency, then load), `balanced`
(the weighted sum of the four scores) and `pinned` (a tenant's ordered list of names first, in
that order; then, when `include_others`, every other candidate ranked as `balanced`; or none).

Before strategy, candidates fall into tiers, best first: healthy-or-unchecked before a failed
health check; remote before local engines (placeholders that make real files offline, so a
configured real provider is preferred); with headroom before at capacity. The names of a
`pinned` order keep their order whatever their tier. Providers whose breaker is open (or that
told us to back off with a `Retry-After` that has not passed) are left out; a half-open breaker
is kept so that one trial call can go through. Ties break by name.
"""

