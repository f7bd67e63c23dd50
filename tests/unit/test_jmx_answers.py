"""Whether a down node's JMX answers (detection/observe.jmx_answers): a refused JMX login is "cannot tell", never
"does not answer" (which would read as a hung or dead node)."""

from __future__ import annotations

import sys

import pytest

from cassandra_recovery.detection.observe import jmx_answers
from cassandra_recovery.settings import ClusterConfig, NodeAccess

pytestmark = pytest.mark.area("observation")


def _cluster(script: str) -> ClusterConfig:
    node = NodeAccess(name="n1", address="10.0.0.1", jmx_host="127.0.0.1", jmx_port=7199)
    return ClusterConfig(
        id="c", contact_points=["10.0.0.1"], local_datacenter="dc1", nodes=[node],
        nodetool_command=[sys.executable, "-c", script],
    )  # fmt: skip


def _fails_with(message: str) -> str:
    return f"import sys; sys.stderr.write({message!r} + '\\n'); sys.exit(1)"


@pytest.mark.parametrize(
    "message",
    [
        # The JMX messages Cassandra 5.0's nodetool gave on the lab (tests/cluster/test_lab_security.py asserts
        # them): no credentials, then a wrong password; framed as nodetool frames a failed connection.
        "nodetool: Failed to connect to '127.0.0.1:7199' - SecurityException: "
        "'Authentication failed! Credentials required'.",
        "nodetool: Failed to connect to '127.0.0.1:7199' - SecurityException: 'Invalid username or password'.",
    ],
)
def test_a_refused_login_is_cannot_tell(message: str) -> None:
    assert jmx_answers(_cluster(_fails_with(message)), "n1") is None


def test_a_refused_connection_is_no_answer_and_an_answer_is_yes() -> None:
    refused = "nodetool: Failed to connect to '127.0.0.1:7199' - ConnectException: 'Connection refused'."
    assert jmx_answers(_cluster(_fails_with(refused)), "n1") is False
    assert jmx_answers(_cluster("print('ID : 1234')"), "n1") is True
