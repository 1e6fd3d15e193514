"""People who sign in: a tenant's staff and its portal customers, their sessions and the
one-time links mailed to them (models, passwords, service)."""
