"""Hostile headers and timestamps: the receiver answers 2xx or 4xx, never a 5xx (or an exception)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit import asgi_raw
from tests.unit.test_intake_app import TOKEN_A, Harness, first_alert_only, load, make

pytestmark = pytest.mark.area("intake")

SETTINGS = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# Header bytes are read as latin-1: its superscripts are digits to str.isdigit() that int() refuses.
ODD_DIGITS = [b"\xb2", b"\xb9\xb2\xb3", b"1741944000\xb2", "١٢٣".encode(), "𝟙𝟚".encode()]
HEADER_BYTES = st.sampled_from(ODD_DIGITS) | st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b)
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
EDGE_TIMES = st.sampled_from([datetime(1, 1, 1), datetime(1, 1, 1, 0, 30), datetime(9999, 12, 31, 23, 59, 59)])
DATETIMES = st.one_of(EDGE_TIMES, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)))


def _ok(status: int) -> bool:
    return 200 <= status < 500


@pytest.fixture(scope="module")
def h() -> Any:
    harness = make(rate_per_s=1e6, rate_burst=1_000_000)
    yield harness
    harness.intake.close()


@pytest.mark.parametrize("ts", ODD_DIGITS)
def test_unicode_digit_timestamp_is_401_not_500(h: Harness, ts: bytes) -> None:
    headers = [(b"x-cr-timestamp", ts), (b"x-cr-signature", b"sha256=00")]
    assert asgi_raw.post(h.client.app, "/alerts/generic", headers, asgi_raw.body_once(b"{}")) == 401


@pytest.mark.parametrize("length", [b"\xb2", b"\xb9\xb2", b"-1", b"1e3", b""])
def test_odd_content_length_is_a_4xx_not_500(h: Harness, length: bytes) -> None:
    headers = [(b"authorization", b"Bearer " + TOKEN_A.encode()), (b"content-length", length)]
    status = asgi_raw.post(h.client.app, "/alerts/alertmanager", headers, asgi_raw.body_once(b"{}"))
    assert 400 <= status < 500


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:00:00-23:59"]
)
def test_timestamps_that_overflow_in_utc_are_422_naming_the_field(h: Harness, stamp: str) -> None:
    doc = first_alert_only("alertmanager_v4_firing")
    doc["alerts"][0]["startsAt"] = stamp
    r = h.post("alertmanager", doc)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "alerts", 0, "startsAt"]


@SETTINGS
@given(
    timestamp=HEADER_BYTES,
    signature=HEADER_BYTES,
    authorization=HEADER_BYTES,
    path=st.sampled_from(["generic", "grafana"]),
)
def test_fuzzed_auth_headers_never_get_a_5xx(
    h: Harness, timestamp: bytes, signature: bytes, authorization: bytes, path: str
) -> None:
    headers = {"X-CR-Timestamp": timestamp, "X-CR-Signature": signature, "Authorization": authorization}
    raw = [(name.lower().encode(), value) for name, value in headers.items()]
    assert asgi_raw.post(h.client.app, f"/alerts/{path}", raw, asgi_raw.body_once(b'{"alerts": []}')) == 401


@SETTINGS
@given(
    starts=DATETIMES,
    ends=st.none() | DATETIMES,
    start_tz=OFFSETS,
    end_tz=OFFSETS,
    source=st.sampled_from(["alertmanager", "grafana", "generic"]),
)
def test_fuzzed_alert_timestamps_never_get_a_5xx(
    h: Harness, starts: datetime, ends: datetime | None, start_tz: timezone, end_tz: timezone, source: str
) -> None:
    stamp = starts.replace(tzinfo=start_tz).isoformat()
    end = None if ends is None else ends.replace(tzinfo=end_tz).isoformat()
    if source == "generic":
        doc: dict[str, Any] = copy.deepcopy(load("generic_firing"))
        doc["alerts"] = doc["alerts"][:1]
        doc["alerts"][0] |= {"starts_at": stamp, "ends_at": end}
    else:
        doc = first_alert_only("alertmanager_v4_firing" if source == "alertmanager" else "grafana_v1_firing")
        doc["alerts"][0] |= {"startsAt": stamp, "endsAt": end}
    r = h.post(source, doc)
    assert _ok(r.status_code), (r.status_code, r.text[:300])
