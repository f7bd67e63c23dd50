"""Operator controls: the per-cluster kill switch, maintenance windows and silences."""
