"""Scheduled repair: what each routine repair did, and the repair-age gauges it is watched by."""
