"""L{components.common.addresses}: a client's address, and whom to believe about it."""

import pytest

pytestmark = pytest.mark.unit


def test_a_clients_address_is_its_peer_or_what_a_trusted_front_says():
    from components.common.addresses import client_address

    assert client_address({"peer": "tcp4:198.51.100.7:5555"}, ()) == "198.51.100.7"
    assert client_address({"peer": "tcp6:::1:5555"}, ()) == "::1"
    assert client_address({"peer": "unix"}, ()) == "local"
    forwarded = {"peer": "tcp4:10.0.0.9:4444", "http_headers_received": {"x-forwarded-for": "1.1.1.1, 203.0.113.5"}}
    assert client_address(forwarded, ("10.0.0.9",)) == "203.0.113.5", "the entry the front added"
    assert client_address(forwarded, ()) == "10.0.0.9", "an untrusted peer's header is ignored"
