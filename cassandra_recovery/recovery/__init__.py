"""Recovery engine: mitigation, hint drain, segmented repair with checkpoints."""
