"""L{components.router.backend_authenticator}: only the node's own key is a backend."""

import pytest

pytestmark = pytest.mark.unit


def test_the_backend_authenticator_admits_only_the_node_key(tmp_path):
    """components.common.node_key, with a node key made by Crossbar's own code."""
    from autobahn.wamp.cryptosign import CryptosignKey
    from autobahn.wamp.exception import ApplicationError
    from crossbar.common.key import _maybe_generate_node_key

    from components.common.node_key import cryptosign_authentication
    from components.router.backend_authenticator import create_authenticator

    _maybe_generate_node_key(str(tmp_path))
    authenticate = create_authenticator({"cbdir": str(tmp_path)})
    node_pubkey = CryptosignKey.from_keyfile(str(tmp_path / "key.priv")).public_key()
    stranger = CryptosignKey.from_bytes(b"\x01" * 32).public_key()
    for extra in ({}, {"pubkey": stranger}):
        with pytest.raises(ApplicationError) as refused:
            authenticate("cell", "spawner_local", {"authextra": extra})
        assert refused.value.error == ApplicationError.AUTHENTICATION_FAILED
    assert authenticate("cell", "spawner_local", {"authextra": {"pubkey": node_pubkey}}) == {
        "pubkey": node_pubkey,
        "role": "backend",
        "authid": "spawner_local",
    }
    # What a backend component presents is that same key.
    credentials = cryptosign_authentication(str(tmp_path), "spawner_local")["cryptosign"]
    assert CryptosignKey.from_bytes(bytes.fromhex(credentials["privkey"])).public_key() == node_pubkey
