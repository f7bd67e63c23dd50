"""Fuzzing the receiver: bodies derived from its OpenAPI schema never get a 5xx, and nothing is launched twice."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import faults as F
from tests.unit.test_intake_app import Harness, load, make

pytestmark = pytest.mark.area("intake")

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIXTURE = {"alertmanager": "alertmanager_v4_firing", "grafana": "grafana_v1_firing", "generic": "generic_firing"}
# No example database: nothing is written into the checkout, and every run explores afresh.
SETTINGS = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def schema_paths(spec: dict[str, Any], schema: dict[str, Any], doc: Any, path: tuple[Any, ...] = ()) -> list[Any]:
    """(path, declared types) of every field the schema describes that the fixture document holds."""
    schema = _resolve(spec, schema)
    out: list[Any] = []
    if "anyOf" in schema:
        types = {_resolve(spec, s).get("type") for s in schema["anyOf"]}
    else:
        types = {schema.get("type")}
    out.append((path, types))
    if isinstance(doc, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in doc:
                out += schema_paths(spec, sub, doc[name], (*path, name))
    elif isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc[:2]):
            out += schema_paths(spec, schema["items"], item, (*path, i))
    return out


def wrong_value(types: set[Any]) -> st.SearchStrategy[Any]:
    """A JSON value whose type is none of the declared ones."""
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "string": st.text(max_size=10),
        "integer": st.integers(),
        "number": st.floats(allow_nan=False),
        "boolean": st.booleans(),
        "object": st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3),
        "array": st.lists(JSON_SCALARS, max_size=3),
        "null": st.none(),
    }
    allowed = set(types) | ({"number"} if "integer" in types else set())
    return st.one_of(*[s for t, s in by_type.items() if t not in allowed])


def put(doc: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    target = doc
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@st.composite
def malformed(draw: st.DrawFn, source: str, spec: dict[str, Any]) -> bytes:
    doc = load(FIXTURE[source])
    schema = spec["paths"][f"/alerts/{source}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    kind = draw(st.sampled_from(["wrong_type", "delete", "any_value", "extra", "raw_bytes", "truncate"]))
    if kind == "raw_bytes":
        return draw(st.binary(max_size=200))
    if kind == "truncate":
        text = json.dumps(doc).encode()
        return text[: draw(st.integers(0, len(text) - 1))]
    path, types = draw(st.sampled_from(schema_paths(spec, schema, doc)))
    if kind == "wrong_type" and types - {None}:
        doc = put(doc, path, draw(wrong_value(types)))
    elif kind == "delete" and path:
        doc = put(doc, path, None, delete=True)
    elif kind == "extra" and isinstance(doc_at := _at(doc, path), dict):
        doc_at[draw(st.text(min_size=1, max_size=10))] = draw(JSON_VALUES)
    else:
        doc = put(doc, path, draw(JSON_VALUES))
    return json.dumps(doc).encode()


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _no_double_launch(h: Harness) -> None:
    twice = [k for k, n in Counter(h.launch_keys()).items() if n > 1]
    assert twice == [], f"launched twice: {twice}"


def _fuzz(source: str) -> None:
    h = make(rate_per_s=1e6, rate_burst=1_000_000)
    spec = h.client.get("/openapi.json").json()
    seen: Counter[int] = Counter()

    @SETTINGS
    @given(body=malformed(source, spec))
    def run(body: bytes) -> None:
        r = h.post(source, body)
        seen[r.status_code] += 1
        assert r.status_code in (200, 400, 422), (r.status_code, r.text[:300])
        if r.status_code == 422:
            assert all(e["loc"][0] == "body" for e in r.json()["detail"])  # each error names its field

    try:
        run()
        _no_double_launch(h)
        # The generator reached every branch: rejected bodies of both kinds and accepted ones.
        assert seen[400] and seen[422] and seen[200], seen
    finally:
        h.intake.close()


def test_fuzz_alertmanager() -> None:
    _fuzz("alertmanager")


def test_fuzz_grafana() -> None:
    _fuzz("grafana")


def test_fuzz_generic() -> None:
    _fuzz("generic")


@pytest.mark.fault(F.ALERT_FLOOD)
def test_fuzz_valid_deliveries_in_any_order_launch_each_episode_once() -> None:
    """Re-sends, re-fires and resolutions in any order: one launch per (fingerprint, startsAt), never two."""
    h = make(rate_per_s=1e6, rate_burst=1_000_000)
    base = load("alertmanager_v4_firing")["alerts"][0]
    starts = ["2025-03-14T09:26:53.358Z", "2025-03-14T11:00:00Z", "2025-03-14T12:30:00.5Z"]
    event = st.tuples(st.sampled_from(["firing", "resolved"]), st.sampled_from(starts), st.booleans())

    @SETTINGS
    @given(events=st.lists(event, min_size=1, max_size=12))
    def run(events: list[tuple[str, str, bool]]) -> None:
        for status, starts_at, close in events:
            alert = base | {"status": status, "startsAt": starts_at}
            doc = {"version": "4", "status": status, "alerts": [alert]}
            assert h.post("alertmanager", doc).status_code == 200
            if close:
                h.incidents.close("lab")
        _no_double_launch(h)

    try:
        run()
        fired = {k for k in h.launch_keys()}
        assert 1 <= len(fired) <= len(starts)
    finally:
        h.intake.close()
