"""bybit_sign: the Rust REST signature against the reference vectors and Python's own hmac."""

import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from apexctl import _core

# reference/bybit-v5.md §0 and §4.3 (nautilus_trader's credential tests, re-verified there with Python hmac).
SECRET, KEY, TS, RECV = "test_secret", "test_api_key", 1700000000000, 5000


def reference(secret: str, key: str, ts: int, recv: int, payload: str) -> str:
    return hmac.new(secret.encode(), f"{ts}{key}{recv}{payload}".encode(), hashlib.sha256).hexdigest()


def test_rest_get_vector():
    query = "category=linear&symbol=BTCUSDT"
    expected = "fd4f31228a46109dc6673062328693696df9a96c7ff04e6491a45e7f63a0fdd7"
    assert _core.bybit_sign(SECRET, KEY, TS, RECV, query) == expected
    assert reference(SECRET, KEY, TS, RECV, query) == expected


def test_empty_payload_signs_the_headers_only():
    # A GET without parameters signs `ts + key + recv` alone (reference §4.2).
    assert _core.bybit_sign(SECRET, KEY, TS, RECV, "") == reference(SECRET, KEY, TS, RECV, "")
    assert _core.bybit_sign(SECRET, KEY, TS, RECV, "") != _core.bybit_sign(SECRET, KEY, TS, RECV, " ")


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(max_size=64),
    key=st.text(max_size=40),
    ts=st.integers(min_value=0, max_value=2**53),
    recv=st.integers(min_value=0, max_value=120_000),
    payload=st.text(max_size=300),
)
def test_matches_python_hmac(secret, key, ts, recv, payload):
    sign = _core.bybit_sign(secret, key, ts, recv, payload)
    assert sign == reference(secret, key, ts, recv, payload)
    assert sign == sign.lower()
    assert len(sign) == 64
