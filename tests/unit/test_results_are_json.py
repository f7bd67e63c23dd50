"""Every flow and task persists JSON, never pickle, and its results are plain JSON values: results written by one
version of the tool load in the next (an incident open for a day, an approval suspended for hours)."""

from __future__ import annotations

import collections.abc
import importlib
import pkgutil
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import typing_extensions
from prefect import Flow
from prefect.tasks import Task
from pydantic import JsonValue

import flows
import tasks
from tests import faults as F

pytestmark = pytest.mark.area("incident")
ROOT = Path(__file__).resolve().parents[2]
_PLAIN = (str, int, float, bool, type(None))


def _decorated() -> list[tuple[str, Flow[Any, Any] | Task[Any, Any]]]:
    found = []
    for pkg in (flows, tasks):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if isinstance(obj, Flow | Task) and getattr(obj.fn, "__module__", None) == module.__name__:
                    found.append((f"{module.__name__}.{name}", obj))
    return found


def _json_plain(tp: Any) -> bool:
    """A return type made of JSON's own values: str, numbers, bool, None, dict with str keys, list; Any counts, and
    so do pydantic's JsonValue and TypedDicts of such values (plain dicts at runtime: cassandra_recovery/contracts.py).
    A Sequence is a list or a tuple, which JSON keeps as a list."""
    if tp is Any or tp in _PLAIN or tp is JsonValue:
        return True
    if typing_extensions.is_typeddict(tp):
        return all(_json_plain(t) for t in typing.get_type_hints(tp).values())
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is collections.abc.Sequence:
        return _json_plain(args[0])
    if origin in (typing.Union, types.UnionType):
        return all(_json_plain(a) for a in args)
    if origin is dict:
        return args[0] is str and _json_plain(args[1])
    if origin is list:
        return _json_plain(args[0])
    return False


def test_every_flow_and_task_is_found() -> None:
    names = [n for n, _ in _decorated()]
    assert len(names) >= 40 and "flows.incident.incident_response" in names and "tasks.incident.open_or_join" in names


@pytest.mark.fault(F.SCHEMA_FROM_OLDER_VERSION)
def test_every_flow_and_task_persists_json() -> None:
    assert [n for n, obj in _decorated() if obj.result_serializer != "json"] == []


def test_every_persisted_result_is_a_plain_json_value() -> None:
    persisted = [(n, obj) for n, obj in _decorated() if obj.persist_result is not False]
    bad = [n for n, obj in persisted if not _json_plain(typing.get_type_hints(obj.fn).get("return", Any))]
    assert persisted and bad == []


def test_tasks_that_always_run_again_persist_nothing() -> None:
    from prefect.cache_policies import NO_CACHE

    uncached = [(n, t) for n, t in _decorated() if isinstance(t, Task) and t.cache_policy is NO_CACHE]
    assert uncached and [n for n, t in uncached if t.persist_result is not False] == []
