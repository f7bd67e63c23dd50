"""Recovery engine: hint drain, segmented repair with checkpoints, node replacement."""
