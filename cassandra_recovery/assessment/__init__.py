"""Assessment: what is down, node failure or partition, the ranges and consistency levels at risk, hints or repair.

The decisions are pure (logic/assessment.py); this package gathers their inputs from the live cluster."""
