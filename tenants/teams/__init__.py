"""Teams (issue #13): a customer's workspace with its own wallet, members by invitation,
roles and per-member allocations. `models` (tables), `schemas` (the API's structs),
`service` (teams, members, invitations), `allocations` (limits and their spend counters).
The HTTP routes, mail and funding are `gateway/teams/`; docs/teams.md is the user's guide."""
