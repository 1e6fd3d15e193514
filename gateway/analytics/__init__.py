"""Reports over a tenant's (or, for the operator, every tenant's) data: series, customer
segments, CSV exports."""
