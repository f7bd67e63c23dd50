"""Alert intake: an HTTP receiver for Alertmanager, Grafana and signed generic alerts, with a PostgreSQL spool."""
