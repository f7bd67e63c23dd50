"""The lab's Cassandra runtime: Java 17 plus cassandra-all's dependency closure from Maven Central."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cassandra_recovery.clients.child_env import PROXY, child_env
from cassandra_recovery.errors import CommandError, ToolMissingError
from cassandra_recovery.lab.layout import LOGBACK_TOOLS, NODETOOL_MAIN, nodetool_prefix

log = logging.getLogger(__name__)
POM = Path(__file__).with_name("pom.xml")
_JAVA_VERSION = re.compile(r'version "(\d+)')
SUPPORTED_JAVA = (11, 17)
# The hint counters the detector reads through sjk (clients/jmx.py HINT_PATTERN): a class list worth archiving.
HINT_BEANS = "org.apache.cassandra.metrics:name=*Hint*,*"
_FALLBACK_JAVA = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"  # when `java` on PATH is a newer JDK


@dataclass(frozen=True)
class Runtime:
    """A resolved runtime: the java binary and the directory holding every jar."""

    java: str
    lib_dir: Path
    tools_conf: Path
    version: str

    def nodetool_prefix(self) -> list[str]:
        return nodetool_prefix(self.java, self.lib_dir, self.tools_conf, existing_archive(self.lib_dir))


def nodetool_archive(lib_dir: Path) -> Path:
    return lib_dir.parent / "nodetool.jsa"


def existing_archive(lib_dir: Path) -> Path | None:
    archive = nodetool_archive(lib_dir)
    return archive if archive.exists() else None


def build_nodetool_archive(
    java: str, lib_dir: Path, tools_conf: Path, jmx_host: str, jmx_port: int, credentials: Sequence[str] = ()
) -> bool:
    """A class-data-sharing archive of the classes nodetool loads for the commands the tool runs most (status,
    JMX counters through sjk, handoff state), read from a live node: each later nodetool JVM maps them instead of
    loading and verifying them again. Built once per runtime; False (logged) when it could not be built, and
    nodetool then simply runs without it. `credentials`: nodetool's `-u USER -pwf FILE` for the node's JMX."""
    archive = nodetool_archive(lib_dir)
    if archive.exists():
        return True
    prefix = nodetool_prefix(java, lib_dir, tools_conf)
    main = prefix.index(NODETOOL_MAIN)
    target = ["-h", jmx_host, "-p", str(jmx_port), *credentials]
    commands = (["status"], ["statushandoff"], ["sjk", "mx", "-mg", "-all", "-b", HINT_BEANS, "-f", "Count"])
    work = Path(tempfile.mkdtemp(prefix="nodetool-cds.", dir=lib_dir.parent))
    env = child_env()
    try:
        classes: set[str] = set()
        for i, args in enumerate(commands):
            listed = work / f"{i}.classlist"
            argv = [prefix[0], f"-XX:DumpLoadedClassList={listed}", *prefix[1:], *target, *args]
            subprocess.run(
                argv, capture_output=True, text=True, timeout=120, check=True, stdin=subprocess.DEVNULL, env=env
            )
            classes |= set(listed.read_text().splitlines())
        (work / "all.classlist").write_text("\n".join(sorted(classes)) + "\n")
        partial = work / "nodetool.jsa"
        dump = [prefix[0], "-Xshare:dump", f"-XX:SharedClassListFile={work / 'all.classlist'}"]
        dump += [f"-XX:SharedArchiveFile={partial}", *prefix[1:main]]
        subprocess.run(dump, capture_output=True, text=True, timeout=300, check=True, stdin=subprocess.DEVNULL, env=env)
        partial.chmod(0o444)
        partial.replace(archive)  # atomic: a nodetool started meanwhile sees no archive or a whole one
        return True
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("nodetool runs without a class-data archive: %s", e)
        return False
    finally:
        shutil.rmtree(work, ignore_errors=True)


def find_java() -> str:
    """Java 17 (or 11) binary; Cassandra 5.0 refuses newer JDKs."""
    candidates = [shutil.which("java"), _FALLBACK_JAVA]
    seen: list[str] = []
    for java in filter(None, candidates):
        if not Path(java).exists():
            continue
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, env=child_env())
        m = _JAVA_VERSION.search(out.stderr + out.stdout)
        major = int(m.group(1)) if m else -1
        seen.append(f"{java} (major {major})")
        if major in SUPPORTED_JAVA:
            return java
    raise ToolMissingError(
        "Cassandra 5.0 needs Java 17 (or 11); found "
        + (", ".join(seen) or "no java")
        + ". Install it with: apt-get install -y openjdk-17-jre-headless"
    )


def find_maven() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise ToolMissingError(
            "Maven is needed to fetch Cassandra from Maven Central. Install it with: apt-get install -y maven"
        )
    return mvn


def ensure_runtime(base_dir: Path, version: str) -> Runtime:
    """Resolve cassandra-all `version` into base_dir/runtime/<version>/lib once; later calls reuse it."""
    java = find_java()
    root = base_dir / "runtime" / version
    lib = root / "lib"
    marker = root / ".complete"
    if not marker.exists():
        mvn = find_maven()
        tmp = root / "lib.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        argv = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            f"-Dcassandra.version={version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={tmp}",
        ]
        log.info("resolving Cassandra %s from Maven Central into %s", version, lib)
        # Maven: its own options and the host's proxy (its settings.xml is under HOME)
        env = child_env((*PROXY, "MAVEN_OPTS", "MAVEN_HOME", "M2_HOME"))
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, cwd=root, env=env)
        if proc.returncode != 0 or not any(tmp.glob(f"cassandra-all-{version}.jar")):
            raise CommandError(
                argv, proc.returncode, proc.stdout, proc.stderr, reason="could not resolve the Cassandra runtime"
            )
        shutil.rmtree(lib, ignore_errors=True)
        tmp.rename(lib)
        marker.write_text(version + "\n")
    tools_conf = root / "tools-conf"
    tools_conf.mkdir(exist_ok=True)
    (tools_conf / "logback-tools.xml").write_text(LOGBACK_TOOLS)
    _world_readable(base_dir)
    return Runtime(java=java, lib_dir=lib, tools_conf=tools_conf, version=version)


def _world_readable(base_dir: Path) -> None:
    """Node users must read the jars: open the runtime tree for reading (never for writing)."""
    for p in [base_dir, base_dir / "runtime", *(base_dir / "runtime").rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | (0o555 if p.is_dir() else 0o444))
