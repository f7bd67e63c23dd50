"""Pure decision logic: no I/O, no clocks (callers pass `now`)."""
