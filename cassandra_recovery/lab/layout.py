"""The lab's topology and per-node files (cassandra.yaml, rack properties, logback, JVM line): pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cassandra_recovery.errors import ConfigError
from cassandra_recovery.logic.tokens import balanced_tokens

CLUSTER_NAME = "cassandra-recovery-lab"
FIRST_HOST_OCTET = 2  # 127.0.0.1 stays the address of clients and tools
JMX_BASE_PORT = 7199
JMX_PORT_STEP = 100
MAX_NODES = 9
SEED_COUNT = 2
JMX_PASSWORD_FILE = "jmxremote.password"  # noqa: S105 - a file name
JMX_ACCESS_FILE = "jmxremote.access"

# From Cassandra's conf/jvm-server.options and conf/jvm17-server.options (small-box subset).
JVM17_MODULE_FLAGS: tuple[str, ...] = (
    *(
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.management/com.sun.jmx.remote.security",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.attach/sun.tools.attach",
            "jdk.compiler/com.sun.tools.javac.file",
        )
    ),
    *(
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "java.base/java.lang",
            "java.base/java.util",
            "java.base/java.nio",
            "jdk.compiler/com.sun.tools.javac",
        )
    ),
)
SERVER_JVM_FLAGS: tuple[str, ...] = (
    "-ea",
    "-da:net.openhft...",
    "-XX:+UseThreadPriorities",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:+ExitOnOutOfMemoryError",
    "-Xss256k",
    "-XX:+UseTLAB",
    "-XX:+ResizeTLAB",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    "-Dchronicle.analytics.disable=true",
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-Djdk.attach.allowAttachSelf=true",
    *JVM17_MODULE_FLAGS,
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    # Faster start of a test cluster (Cassandra's own dtests do the same).
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=5000",
    "-Dcassandra.superuser_setup_delay_ms=0",
    "-Dcassandra.available_processors=2",
    # Heartbeat gaps longer than this stay out of the failure detector's mean interval. Cassandra 5.0 means 2 s
    # by default, but passes 2e9 (nanoseconds) where milliseconds are read: no gap is ever left out, so every
    # freeze or partition of a node lengthens the next conviction of it (measured on the lab: 10 s on a fresh
    # lab, 53 and 62 s after a dozen outages). Production clusters should set it too.
    "-Dcassandra.fd_max_interval_ms=2000",
)


@dataclass(frozen=True)
class NodeSpec:
    """One lab node: where it listens, where it keeps its files, which user runs it."""

    index: int  # 1-based
    address: str
    jmx_port: int
    datacenter: str
    rack: str
    tokens: tuple[int, ...]
    user: str
    seed: bool
    replaces: str | None = None  # address of the dead node this one takes over (replace_address_first_boot)

    @property
    def name(self) -> str:
        return f"node{self.index}"


def node_address(index: int, offset: int = 0) -> str:
    """The address of the lab's node `index` (1-based), `offset` places further for a second lab."""
    return f"127.0.0.{FIRST_HOST_OCTET + offset + index - 1}"


def node_jmx_port(index: int, offset: int = 0) -> int:
    return JMX_BASE_PORT + JMX_PORT_STEP * (offset + index - 1)


def replacement_for(spec: LabSpec, dead: NodeSpec, user_prefix: str, offset: int = 0) -> NodeSpec:
    """A new node taking the dead node's place: next free index and address, same rack and tokens, no seed."""
    index = max(n.index for n in spec.nodes) + 1
    if index > MAX_NODES:
        raise ValueError(f"no free lab address for a replacement (at most {MAX_NODES} nodes)")
    return NodeSpec(
        index=index,
        address=node_address(index, offset),
        jmx_port=node_jmx_port(index, offset),
        datacenter=dead.datacenter,
        rack=dead.rack,
        tokens=dead.tokens,
        user=f"{user_prefix}node{index}",
        seed=False,
        replaces=dead.address,
    )


@dataclass(frozen=True)
class LabSpec:
    """The whole lab as asked for by `lab up`."""

    nodes: tuple[NodeSpec, ...]
    hint_window: str = "3h"
    datacenter: str = "dc1"

    @property
    def seeds(self) -> list[NodeSpec]:
        return [n for n in self.nodes if n.seed]


def find_node(spec: LabSpec, ref: str) -> NodeSpec:
    """The node named `ref` (node1..) or listening on it; ConfigError naming the nodes otherwise."""
    for n in spec.nodes:
        if ref in (n.name, n.address):
            return n
    known = ", ".join(f"{n.name} ({n.address})" for n in spec.nodes)
    raise ConfigError(f"unknown node {ref!r}; lab nodes: {known}")


def plan_lab(
    nodes: int = 3,
    tokens: int = 1,
    hint_window: str = "3h",
    user_prefix: str = "crlab-",
    dcs: int = 1,
    offset: int = 0,
) -> LabSpec:
    """Topology for `nodes` nodes per datacenter on 127.0.0.2.., JMX 7199/7299/.. (both shifted by `offset`
    places), racks rack1..3 within each datacenter dc1..dcN. One datacenter: the first two nodes are seeds;
    several: the first node of each. Each datacenter's ring is balanced on its own, offset by its index (tokens
    are unique cluster-wide)."""
    if not 1 <= dcs <= 4:
        raise ValueError(f"--dcs must be between 1 and 4, got {dcs}")
    if not 1 <= nodes * dcs <= MAX_NODES:
        what = "--nodes" if dcs == 1 else f"--nodes-per-dc x --dcs ({nodes} x {dcs})"
        raise ValueError(f"{what} must be between 1 and {MAX_NODES} nodes in all")
    if not 1 <= tokens <= 256:
        raise ValueError(f"--tokens must be between 1 and 256, got {tokens}")
    ring = balanced_tokens(nodes, tokens)
    specs = tuple(
        NodeSpec(
            index=d * nodes + i + 1,
            address=node_address(d * nodes + i + 1, offset),
            jmx_port=node_jmx_port(d * nodes + i + 1, offset),
            datacenter=f"dc{d + 1}",
            rack=f"rack{i % 3 + 1}",
            tokens=tuple(t + d for t in ring[i]),
            user=f"{user_prefix}node{d * nodes + i + 1}",
            seed=i < SEED_COUNT if dcs == 1 else i == 0,
        )
        for d in range(dcs)
        for i in range(nodes)
    )
    return LabSpec(nodes=specs, hint_window=hint_window)


def datacenters(spec: LabSpec) -> dict[str, list[NodeSpec]]:
    """The lab's nodes by datacenter, in node order."""
    out: dict[str, list[NodeSpec]] = {}
    for n in spec.nodes:
        out.setdefault(n.datacenter, []).append(n)
    return out


def cassandra_yaml(spec: LabSpec, node: NodeSpec, node_dir: Path) -> str:
    """cassandra.yaml for one node; every directory lives under node_dir."""
    seeds = ",".join(f"{s.address}:7000" for s in spec.seeds)
    conf = {
        "cluster_name": CLUSTER_NAME,
        "num_tokens": len(node.tokens),
        # A replacement takes the dead node's tokens from gossip and must bootstrap (5.0 refuses otherwise).
        **({} if node.replaces else {"initial_token": ",".join(str(t) for t in node.tokens)}),
        "auto_bootstrap": node.replaces is not None,
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        "endpoint_snitch": "GossipingPropertyFileSnitch",
        "seed_provider": [
            {
                "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                "parameters": [{"seeds": seeds}],
            }
        ],
        "listen_address": node.address,
        "rpc_address": node.address,
        "storage_port": 7000,
        "native_transport_port": 9042,
        "start_native_transport": True,
        "data_file_directories": [str(node_dir / "data")],
        "commitlog_directory": str(node_dir / "commitlog"),
        "saved_caches_directory": str(node_dir / "saved_caches"),
        "hints_directory": str(node_dir / "hints"),
        "cdc_raw_directory": str(node_dir / "cdc_raw"),
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        "commitlog_segment_size": "8MiB",
        "commitlog_total_space": "256MiB",
        "hinted_handoff_enabled": True,
        "max_hint_window": spec.hint_window,
        "hints_flush_period": "10000ms",
        "max_hints_delivery_threads": 2,
        "authenticator": "AllowAllAuthenticator",
        "authorizer": "AllowAllAuthorizer",
        "auto_snapshot": False,
        "concurrent_reads": 8,
        "concurrent_writes": 8,
        "concurrent_counter_writes": 8,
        "concurrent_compactors": 1,
        "memtable_heap_space": "64MiB",
        "memtable_offheap_space": "64MiB",
        "key_cache_size": "8MiB",
        "file_cache_size": "32MiB",
        "write_request_timeout": "2000ms",
        "read_request_timeout": "5000ms",
        "range_request_timeout": "10000ms",
        # dtests use 5: a hung node is convicted in a few seconds instead of ~10.
        "phi_convict_threshold": 5,
    }
    return yaml.safe_dump(conf, sort_keys=False)


def rackdc_properties(node: NodeSpec) -> str:
    return f"dc={node.datacenter}\nrack={node.rack}\n"


def logback_xml(log_dir: Path) -> str:
    """system.log with Cassandra's own line layout, rolled by size so a long lab stays small."""
    return f"""<configuration scan="false">
  <appender name="SYSTEMLOG" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{log_dir}/system.log</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>{log_dir}/system.log.%i.zip</fileNamePattern>
      <minIndex>1</minIndex><maxIndex>3</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>20MB</maxFileSize>
    </triggeringPolicy>
    <encoder><pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="SYSTEMLOG"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
</configuration>
"""


def daemon_argv(java: str, lib_dir: Path, node: NodeSpec, node_dir: Path, heap: str) -> list[str]:
    """The java command line that runs CassandraDaemon for one node in the foreground."""
    conf = node_dir / "conf"
    return [
        java,
        *SERVER_JVM_FLAGS,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        f"-javaagent:{lib_dir / 'jamm-0.4.0.jar'}",
        f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
        f"-Dcassandra.storagedir={node_dir}",
        f"-Dcassandra.logdir={node_dir / 'logs'}",
        f"-Dlogback.configurationFile={conf / 'logback.xml'}",
        "-Dcassandra-foreground=yes",
        f"-Dcassandra-pidfile={node_dir / 'run' / 'cassandra.pid'}",  # a directory the node user writes in
        f"-Dcassandra.jmx.local.port={node.jmx_port}",
        # Local JMX is still JMX: anyone on the machine could otherwise run any operation on the node.
        "-Dcom.sun.management.jmxremote.authenticate=true",
        f"-Dcom.sun.management.jmxremote.password.file={conf / JMX_PASSWORD_FILE}",
        f"-Dcom.sun.management.jmxremote.access.file={conf / JMX_ACCESS_FILE}",
        *([f"-Dcassandra.replace_address_first_boot={node.replaces}"] if node.replaces else []),
        "-cp",
        f"{conf}:{lib_dir}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    ]


NODETOOL_MAIN = "org.apache.cassandra.tools.NodeTool"


def nodetool_prefix(java: str, lib_dir: Path, conf_dir: Path, archive: Path | None = None) -> list[str]:
    """argv that runs nodetool from the lab runtime (one short-lived JVM per call). `archive`: a class-data-sharing
    archive of nodetool's classes (a third less CPU per call; see runtime.build_nodetool_archive). JVM warnings go
    to stderr, never into the output that is parsed. The classpath holds jars only: CDS refuses directories."""
    return [
        java,
        *JVM17_MODULE_FLAGS,
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xlog:disable",
        "-Xlog:all=warning:stderr",
        *([f"-XX:SharedArchiveFile={archive}", "-Xshare:auto"] if archive else []),
        "-Dlogback.configurationFile=" + str(conf_dir / "logback-tools.xml"),
        "-cp",
        f"{lib_dir}/*",
        NODETOOL_MAIN,
    ]


LOGBACK_TOOLS = """<configuration>
  <appender name="STDERR" class="ch.qos.logback.core.ConsoleAppender">
    <target>System.err</target>
    <encoder><pattern>%-5level %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="STDERR"/></root>
</configuration>
"""
