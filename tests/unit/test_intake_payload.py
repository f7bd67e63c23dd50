"""Webhook parsing and normalisation on Alertmanager v4, Grafana v1 and generic documents; keys derived from them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cassandra_recovery.intake.keys import LAUNCH_KEY_PREFIX, dedup_key, launch_key, trigger_doc
from cassandra_recovery.intake.payload import PayloadError, labels_fingerprint, parse

pytestmark = pytest.mark.area("intake")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return doc


def locs(doc: Any, source: str = "alertmanager") -> list[list[Any]]:
    with pytest.raises(PayloadError) as e:
        parse(source, doc, "lab")
    return [err["loc"] for err in e.value.errors]


def test_alertmanager_v4_firing_group_is_normalised() -> None:
    down, hints = parse("alertmanager", load("alertmanager_v4_firing"), "lab")
    assert (down.source, down.status, down.cluster_id, down.name) == (
        "alertmanager",
        "firing",
        "lab",
        "CassandraNodeDown",
    )
    assert down.nodes == ("127.0.0.3",)  # instance host without the exporter port
    assert down.ends_at is None  # 0001-01-01T00:00:00Z means "still firing"
    assert down.starts_at == datetime(2025, 3, 14, 9, 26, 53, 358000, tzinfo=UTC)
    assert down.fingerprint == "8c8d7c5b3bbd4f9c"
    assert down.summary == "Cassandra node 127.0.0.3 is down"
    assert hints.nodes == ("node1",)  # the `node` label wins over `instance`
    assert hints.starts_at.microsecond == 358415  # nanoseconds cut to microseconds, deterministically


def test_alertmanager_v4_resolved_keeps_the_episode_identity() -> None:
    (firing, _), (resolved,) = (
        parse("alertmanager", load("alertmanager_v4_firing"), "lab"),
        parse("alertmanager", load("alertmanager_v4_resolved"), "lab"),
    )
    assert resolved.status == "resolved"
    assert resolved.ends_at == datetime(2025, 3, 14, 9, 41, 8, 358000, tzinfo=UTC)
    assert launch_key(resolved) == launch_key(firing)  # same episode
    assert dedup_key(resolved) != dedup_key(firing)  # but a different state, stored separately


def test_grafana_v1_firing_and_resolved() -> None:
    (firing,) = parse("grafana", load("grafana_v1_firing"), "lab")
    (resolved,) = parse("grafana", load("grafana_v1_resolved"), "lab")
    assert firing.source == "grafana" and firing.nodes == ("node2",)
    assert firing.starts_at == datetime(2025, 3, 14, 9, 2, tzinfo=UTC)  # +01:00 normalised to UTC
    assert firing.ends_at is None
    assert resolved.ends_at == datetime(2025, 3, 14, 9, 19, tzinfo=UTC)
    assert launch_key(firing) == launch_key(resolved)


def test_generic_form() -> None:
    (a,) = parse("generic", load("generic_firing"), "other")
    assert (a.cluster_id, a.name, a.nodes, a.fingerprint) == ("lab", "OrdersReadPathFailing", ("node3",), a.fingerprint)
    assert a.fingerprint == "synthetic-check/orders-read-path"
    assert a.labels["cluster"] == "lab"


def test_same_instant_in_another_zone_gives_the_same_keys() -> None:
    doc = load("alertmanager_v4_firing")
    other = copy.deepcopy(doc)
    other["alerts"][0]["startsAt"] = "2025-03-14T10:26:53.358+01:00"
    a, b = parse("alertmanager", doc, "lab")[0], parse("alertmanager", other, "lab")[0]
    assert (dedup_key(a), launch_key(a)) == (dedup_key(b), launch_key(b))


def test_a_new_start_is_a_new_episode() -> None:
    doc = load("alertmanager_v4_firing")
    again = copy.deepcopy(doc)
    again["alerts"][0]["startsAt"] = "2025-03-14T11:02:00Z"
    a, b = parse("alertmanager", doc, "lab")[0], parse("alertmanager", again, "lab")[0]
    assert launch_key(a) != launch_key(b) and dedup_key(a) != dedup_key(b)
    assert launch_key(a).startswith(LAUNCH_KEY_PREFIX) and len(launch_key(a)) < 100


def test_keys_differ_per_source_and_cluster() -> None:
    doc = load("alertmanager_v4_firing")
    am = parse("alertmanager", doc, "lab")[0]
    doc["version"] = "1"
    gr = parse("grafana", doc, "lab")[0]
    del doc["alerts"][0]["labels"]["cluster"]
    other = parse("grafana", doc, "prod-eu")[0]
    assert len({launch_key(am), launch_key(gr), launch_key(other)}) == 3
    assert other.cluster_id == "prod-eu"  # the default when no `cluster` label


def test_missing_fingerprint_falls_back_to_a_stable_label_hash() -> None:
    doc = load("alertmanager_v4_firing")
    del doc["alerts"][0]["fingerprint"]
    a = parse("alertmanager", doc, "lab")[0]
    reordered = dict(reversed(list(doc["alerts"][0]["labels"].items())))
    assert a.fingerprint == labels_fingerprint(reordered) == labels_fingerprint(doc["alerts"][0]["labels"])


@pytest.mark.parametrize(
    ("instance", "nodes"),
    [("[::1]:9500", ("::1",)), ("cass-3.example", ("cass-3.example",)), ("10.0.0.3:9500", ("10.0.0.3",)), ("", ())],
)
def test_instance_label_forms(instance: str, nodes: tuple[str, ...]) -> None:
    doc = load("alertmanager_v4_firing")
    doc["alerts"][0]["labels"]["instance"] = instance
    assert parse("alertmanager", doc, "lab")[0].nodes == nodes


def test_unknown_extra_fields_are_accepted() -> None:
    doc = load("grafana_v1_firing")
    doc["newTopLevelField"] = {"nested": [1, 2]}
    doc["alerts"][0]["imageURL"] = "https://grafana.example/render/abc.png"
    assert len(parse("grafana", doc, "lab")) == 1


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda d: d.update(version="3"), ["body", "version"]),
        (lambda d: d.pop("alerts"), ["body", "alerts"]),
        (lambda d: d.update(alerts=[]), ["body", "alerts"]),
        (lambda d: d["alerts"][0].update(startsAt="yesterday"), ["body", "alerts", 0, "startsAt"]),
        (lambda d: d["alerts"][0].update(startsAt="2025-03-14T09:26:53"), ["body", "alerts", 0, "startsAt"]),
        (lambda d: d["alerts"][1].update(status="pending"), ["body", "alerts", 1, "status"]),
        (lambda d: d["alerts"][0]["labels"].update(severity=3), ["body", "alerts", 0, "labels", "severity"]),
        (lambda d: d["alerts"][0].update(labels=["a"]), ["body", "alerts", 0, "labels"]),
        (lambda d: d.update(truncatedAlerts="none"), ["body", "truncatedAlerts"]),
        (lambda d: d["alerts"][0]["labels"].update(cluster="Prod EU"), ["body", "alerts", 0, "labels", "cluster"]),
    ],
)
def test_invalid_documents_name_the_field(mutate: Any, loc: list[Any]) -> None:
    doc = load("alertmanager_v4_firing")
    mutate(doc)
    assert loc in locs(doc)


def test_not_an_object_at_all() -> None:
    assert locs([1, 2]) == [["body"]]
    assert locs("text", "generic") == [["body"]]


def test_unknown_cluster_is_refused_when_a_registry_is_given() -> None:
    doc = load("alertmanager_v4_firing")
    doc["alerts"][0]["labels"]["cluster"] = "ghost"
    with pytest.raises(PayloadError) as e:
        parse("alertmanager", doc, "lab", known_cluster={"lab"}.__contains__)
    assert e.value.errors[0]["loc"] == ["body", "alerts", 0, "labels", "cluster"]
    assert "unknown cluster 'ghost'" in str(e.value)


def test_generic_rejects_a_bad_cluster_and_missing_id() -> None:
    doc = load("generic_firing")
    doc["alerts"][0]["cluster"] = "UPPER"
    assert ["body", "alerts", 0, "cluster"] in locs(doc, "generic")
    doc = load("generic_firing")
    del doc["alerts"][0]["id"]
    assert ["body", "alerts", 0, "id"] in locs(doc, "generic")


def test_trigger_doc_is_json_and_carries_the_alert() -> None:
    down = parse("alertmanager", load("alertmanager_v4_firing"), "lab")[0]
    doc = trigger_doc(down)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["source"] == "alert:alertmanager" and doc["kind"] == "alert"
    assert doc["nodes"] == ["127.0.0.3"] and doc["reasons"] == ["Cassandra node 127.0.0.3 is down"]
    assert doc["ends_at"] is None and doc["dedup_key"] == dedup_key(down)
