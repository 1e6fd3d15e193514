"""Outgoing webhooks (API.md, "Outgoing webhooks"): endpoints, the event outbox, signed
deliveries with retries, and the delivery log."""
