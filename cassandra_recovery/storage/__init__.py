"""PostgreSQL storage: versioned migrations (the only place that changes the schema) and the per-process facade."""
