"""The lab's node provisioner (registered as `lab`, see plugins.py): a real replacement node on the next address."""

from __future__ import annotations

from cassandra_recovery.lab.cluster import Lab
from cassandra_recovery.recovery.provisioner import Replacement
from cassandra_recovery.settings import ClusterConfig, Settings


class LabProvisioner:
    def __init__(self, settings: Settings, cluster: ClusterConfig):
        self.lab = Lab(settings.lab)

    def replace(self, dead_address: str) -> Replacement:
        dead = self.lab.node(dead_address)
        if self.lab.process(dead) is not None:  # wipe and replace of a node that came back: stop it first
            self.lab.kill(dead.name)
        new = self.lab.replace(dead.name)
        return Replacement(dead_address, new.address, new.name)
