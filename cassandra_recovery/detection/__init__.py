"""Observing a cluster the way a production deployment can: client probes, peers' gossip, JMX counters."""
