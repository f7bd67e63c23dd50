"""Mitigation: the reversible measures an incident takes first (degraded read policy, scheduled repairs paused).

The services honour them through degraded/ (fallback to PostgreSQL, durable write queue)."""
