"""Incident store: one open incident per cluster in PostgreSQL, fenced leases, an append-only timeline, the fenced
log of side effects."""
