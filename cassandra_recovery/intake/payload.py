"""Webhook documents (Alertmanager v4, Grafana v1, the generic form) parsed and normalised into `Alert`s."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

CLUSTER_LABEL = "cluster"
NODE_LABELS = ("node", "instance")
_CLUSTER_ID = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")  # the same rule as settings.ClusterConfig.id
_ZERO_YEAR = 1  # Go's zero time, `0001-01-01T00:00:00Z`: "no end yet" in Alertmanager and Grafana

Status = Literal["firing", "resolved"]
Text = Annotated[str, Field(max_length=4096)]
Labels = dict[Annotated[str, Field(min_length=1, max_length=256)], Text]


def _rfc3339_text(v: Any) -> Any:
    # Pydantic would read a number as epoch seconds; the senders only write RFC 3339, so a number is a mistake.
    if not isinstance(v, str | datetime):
        raise ValueError("expected an RFC 3339 timestamp string")
    return v


def _in_utc(v: datetime) -> datetime:
    # Near year 1 or 9999 an offset pushes the instant out of datetime's range: 422, not an OverflowError.
    try:
        return v.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("timestamp out of range once converted to UTC") from None


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_in_utc)]


class _Open(BaseModel):
    # Senders add fields over time; accepting unknown ones keeps a newer Alertmanager/Grafana working.
    model_config = ConfigDict(extra="allow")


class AmAlert(_Open):
    status: Status
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: Timestamp
    endsAt: Timestamp | None = None
    generatorURL: Text = ""
    fingerprint: Annotated[str, Field(max_length=128)] = ""


class AlertmanagerWebhook(_Open):
    """Prometheus Alertmanager's webhook body (version 4)."""

    version: Literal["4"]
    status: Status
    alerts: Annotated[list[AmAlert], Field(min_length=1)]
    groupKey: Text = ""
    truncatedAlerts: Annotated[int, Field(ge=0)] = 0
    receiver: Text = ""
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: Text = ""


class GrafanaAlert(AmAlert):
    silenceURL: Text = ""
    dashboardURL: Text = ""
    panelURL: Text = ""
    values: Any = None  # informational only; its shape has changed between Grafana versions


class GrafanaWebhook(AlertmanagerWebhook):
    """Grafana alerting's webhook body (version 1): Alertmanager's shape plus a few fields."""

    version: Literal["1"]  # type: ignore[assignment]  # same field, Grafana's value
    alerts: Annotated[list[GrafanaAlert], Field(min_length=1)]  # type: ignore[assignment]
    orgId: int | None = None
    title: Text = ""
    state: Text = ""
    message: Annotated[str, Field(max_length=65536)] = ""


class GenericAlert(_Open):
    """One alert of the generic form; `id` identifies the condition across deliveries (a fingerprint)."""

    id: Annotated[str, Field(min_length=1, max_length=128)]
    status: Status
    name: Annotated[str, Field(min_length=1, max_length=256)]
    starts_at: Timestamp
    ends_at: Timestamp | None = None
    cluster: str | None = None
    nodes: Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=100)] = Field(
        default_factory=list
    )
    summary: Text = ""
    labels: Labels = Field(default_factory=dict)

    @field_validator("cluster")
    @classmethod
    def _cluster_ok(cls, v: str | None) -> str | None:
        if v is not None and not _CLUSTER_ID.match(v):
            raise ValueError(f"invalid cluster id {v!r}")
        return v


class GenericWebhook(_Open):
    """The generic form: `{"alerts": [...]}`, signed with HMAC-SHA256 (see intake.auth)."""

    alerts: Annotated[list[GenericAlert], Field(min_length=1, max_length=1000)]


SOURCES: dict[str, type[BaseModel]] = {
    "alertmanager": AlertmanagerWebhook,
    "grafana": GrafanaWebhook,
    "generic": GenericWebhook,
}


@dataclass(frozen=True)
class Alert:
    """A normalised alert: what the receiver stores, deduplicates and launches on."""

    source: str
    status: Status
    cluster_id: str
    name: str
    fingerprint: str
    starts_at: datetime  # UTC
    ends_at: datetime | None
    nodes: tuple[str, ...]
    summary: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    generator_url: str = ""


class PayloadError(ValueError):
    """The document cannot be used; `errors` are FastAPI-style {loc, msg, type} entries naming the field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))


def _utc(t: datetime | None) -> datetime | None:
    if t is None or t.year == _ZERO_YEAR:
        return None
    return t.astimezone(UTC)


def _node(labels: dict[str, str]) -> tuple[str, ...]:
    """`node` wins; `instance` is host:port in Prometheus, and the port says nothing about the node."""
    if labels.get("node"):
        return (labels["node"],)
    inst = labels.get("instance", "")
    if not inst:
        return ()
    if inst.startswith("["):  # [ipv6]:port
        return (inst[1:].split("]", 1)[0],)
    host, sep, port = inst.rpartition(":")
    return (host,) if sep and port.isdigit() and ":" not in host else (inst,)


def labels_fingerprint(labels: dict[str, str]) -> str:
    """A stable identity for a label set, for senders that leave `fingerprint` out."""
    text = "\x1f".join(f"{k}\x1e{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cluster(labels: dict[str, str], default: str, loc: tuple[Any, ...], known: Callable[[str], bool]) -> str:
    cid = labels.get(CLUSTER_LABEL) or default
    why = "invalid cluster id" if not _CLUSTER_ID.match(cid) else "unknown cluster" if not known(cid) else None
    if why:
        raise PayloadError([{"loc": [*loc, CLUSTER_LABEL], "msg": f"{why} {cid!r}", "type": "value_error"}])
    return cid


def parse(
    source: str, doc: Any, default_cluster: str, known_cluster: Callable[[str], bool] = lambda _: True
) -> list[Alert]:
    """Validate `doc` as `source`'s webhook and normalise its alerts; PayloadError names the bad field."""
    model = SOURCES[source]
    try:
        hook = model.model_validate(doc)
    except ValidationError as e:
        raise PayloadError(
            [{"loc": ["body", *e_["loc"]], "msg": e_["msg"], "type": e_["type"]} for e_ in e.errors()]
        ) from None
    out: list[Alert] = []
    if isinstance(hook, GenericWebhook):
        for i, g in enumerate(hook.alerts):
            labels = {**g.labels, **({CLUSTER_LABEL: g.cluster} if g.cluster else {})}
            cid = _cluster(labels, default_cluster, ("body", "alerts", i, "cluster"), known_cluster)
            out.append(
                Alert(
                    source=source,
                    status=g.status,
                    cluster_id=cid,
                    name=g.name,
                    fingerprint=g.id,
                    starts_at=g.starts_at.astimezone(UTC),
                    ends_at=_utc(g.ends_at),
                    nodes=tuple(g.nodes),
                    summary=g.summary or g.name,
                    labels=labels,
                )
            )
        return out
    assert isinstance(hook, AlertmanagerWebhook)  # noqa: S101 - SOURCES maps the other two to this shape
    for i, a in enumerate(hook.alerts):
        cid = _cluster(a.labels, default_cluster, ("body", "alerts", i, "labels"), known_cluster)
        name = a.labels.get("alertname", "") or "unnamed"
        summary = a.annotations.get("summary") or a.annotations.get("description") or name
        out.append(
            Alert(
                source=source, status=a.status, cluster_id=cid, name=name,
                fingerprint=a.fingerprint or labels_fingerprint(a.labels), starts_at=a.startsAt.astimezone(UTC),
                ends_at=_utc(a.endsAt), nodes=_node(a.labels), summary=summary, labels=dict(a.labels),
                annotations=dict(a.annotations), generator_url=a.generatorURL,
            )
        )  # fmt: skip
    return out
