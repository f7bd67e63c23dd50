"""The lab's state file and its entry in the cluster registry (cluster id `lab`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cassandra_recovery.lab.jmx_auth import JMX_USER, client_file
from cassandra_recovery.lab.layout import LabSpec, NodeSpec, nodetool_prefix, plan_lab
from cassandra_recovery.lab.runtime import existing_archive
from cassandra_recovery.settings import LAB_CLUSTER_ID, ClusterConfig, LabConfig, NodeAccess, Settings

STATE_FILE = "lab.json"


@dataclass
class LabState:
    """What `lab up` built; persisted so every later command (and the registry) sees the same lab."""

    spec: LabSpec
    java: str
    lib_dir: str
    tools_conf: str
    version: str
    partitioned: list[str] = field(default_factory=list)
    # Nodes whose gossip was stopped and started again in the same JVM (heal); a restart clears it.
    gossip_restarted: list[str] = field(default_factory=list)
    # Network cuts between node groups (`lab split`), as Cut.as_dict(); the nftables table mirrors them.
    cuts: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps(d, indent=2)

    @classmethod
    def from_json(cls, text: str) -> LabState:
        d = json.loads(text)
        spec = d.pop("spec")
        nodes = tuple(NodeSpec(**{**n, "tokens": tuple(n["tokens"])}) for n in spec["nodes"])
        d.setdefault("cuts", [])  # state files written before `lab split` existed
        return cls(spec=LabSpec(nodes=nodes, hint_window=spec["hint_window"], datacenter=spec["datacenter"]), **d)


def state_path(lab: LabConfig) -> Path:
    return lab.base_dir / STATE_FILE


def load_state(lab: LabConfig) -> LabState | None:
    p = state_path(lab)
    return LabState.from_json(p.read_text()) if p.exists() else None


def save_state(lab: LabConfig, state: LabState) -> None:
    p = state_path(lab)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    tmp.replace(p)  # atomic: a concurrent reader never sees half a file


def lab_cluster_config(lab: LabConfig) -> ClusterConfig:
    """Registry entry for the lab: from its state file, or the default 3-node layout before `lab up`."""
    state = load_state(lab)
    if state is None:
        spec = plan_lab(user_prefix=lab.user_prefix, offset=lab.address_offset)
        root = lab.base_dir / "runtime" / lab.cassandra_version
        prefix = nodetool_prefix("java", root / "lib", root / "tools-conf")
    else:
        spec = state.spec
        lib = Path(state.lib_dir)
        prefix = nodetool_prefix(state.java, lib, Path(state.tools_conf), existing_archive(lib))
    return ClusterConfig(
        id=LAB_CLUSTER_ID,
        contact_points=[n.address for n in spec.seeds],
        local_datacenter=spec.datacenter,
        nodes=[
            NodeAccess(
                name=n.name,
                address=n.address,
                datacenter=n.datacenter,
                rack=n.rack,
                jmx_host="127.0.0.1",
                jmx_port=n.jmx_port,
            )
            for n in spec.nodes
        ],
        jmx_username=JMX_USER,  # every node's JMX asks for the lab's generated password (jmx_auth.py)
        jmx_password_file=str(client_file(lab)),
        nodetool_command=prefix,
        nodetool_timeout_s=300.0,
        slack_channel="#cassandra-lab",
        provisioner="lab",
    )


def lab_clusters(settings: Settings) -> list[ClusterConfig]:
    """The lab's cluster source (registered as `lab`, see plugins.py): the lab registers itself like any cluster."""
    return [lab_cluster_config(settings.lab)]
