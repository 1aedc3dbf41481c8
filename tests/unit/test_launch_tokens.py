"""L{components.router.launch_tokens}: Binder launch tokens, minted and verified on a Clock; what a stranger tries."""

import base64
import json

import pytest
from twisted.internet.task import Clock

from components.router import launch_tokens
from components.router.launch_tokens import PREFIX, LaunchTokens, TokenRefused

pytestmark = pytest.mark.unit

KEY = launch_tokens.derive(b"a secret only the router has")


def tokens(clock=None):
    return LaunchTokens(KEY, clock or Clock())


def test_a_minted_token_names_its_launch_and_kernel_until_it_expires():
    clock = Clock()
    clock.advance(1_000_000)
    minted = tokens(clock)
    launch, token = minted.mint("sagemath", 600)
    assert token.startswith(PREFIX) and launch.kernel_name == "sagemath" and launch.expires == 1_000_600
    assert minted.verify(token) == launch
    clock.advance(599)
    assert minted.verify(token) == launch
    clock.advance(1)
    with pytest.raises(TokenRefused, match="expired at 1970-01-12T13:56:40Z: launch again"):
        minted.verify(token)


def test_each_launch_is_its_own():
    minted = tokens()
    (first, _), (second, _) = minted.mint("python3", 60), minted.mint("python3", 60)
    assert first.launch_id != second.launch_id and len(first.launch_id) == 32


def forged(token, **changes):
    """C{token} with its payload changed and its MAC kept (what a stranger can do without the key)."""
    body, mac = token[len(PREFIX) :].split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return PREFIX + body + "." + mac


@pytest.mark.parametrize(
    "change", [{"k": "bash"}, {"l": "0" * 32}, {"x": 2**40}], ids=["other kernel", "other launch", "later expiry"]
)
def test_a_stranger_cannot_widen_a_token(change):
    minted = tokens()
    _, token = minted.mint("python3", 60)
    with pytest.raises(TokenRefused, match="not valid here"):
        minted.verify(forged(token, **change))


@pytest.mark.parametrize(
    "token",
    [
        "",
        PREFIX,
        PREFIX + ".",
        PREFIX + "e30.",
        PREFIX + "e30." + "A" * 43,
        "cbl1." + "x" * 600,
        "cbl2.e30.AAAA",
        PREFIX + "e30.é",
        None,
        12,
    ],
)
def test_made_up_tokens_are_refused(token):
    with pytest.raises(TokenRefused):
        tokens().verify(token)


def test_another_keys_token_and_a_cut_token_are_refused():
    _, token = LaunchTokens(launch_tokens.derive(b"another node"), Clock()).mint("python3", 60)
    with pytest.raises(TokenRefused):
        tokens().verify(token)
    _, token = tokens().mint("python3", 60)
    for cut in (token[:-1], token[:-10], token + "A", token.replace(".", "..", 1)):
        with pytest.raises(TokenRefused):
            tokens().verify(cut)


def test_the_key_comes_from_the_shared_secret_else_the_node_key(tmp_path):
    shared = launch_tokens.node_signing_key(str(tmp_path), {"CELL_LAUNCH_SECRET": "s3cret"})
    assert shared == launch_tokens.derive(b"s3cret") and shared != b"s3cret"
    with pytest.raises(RuntimeError, match="set CELL_LAUNCH_SECRET or run in the node directory"):
        launch_tokens.node_signing_key(str(tmp_path), {})
    (tmp_path / "key.priv").write_text(
        "Crossbar.io node private key - KEEP THIS SAFE!\n\n"
        "creator: test\ncreated-at: 2026-01-01T00:00:00.000Z\nmachine-id: x\n"
        "public-key-ed25519: " + "ab" * 32 + "\nprivate-key-ed25519: " + "cd" * 32 + "\n"
    )
    from_node = launch_tokens.node_signing_key(str(tmp_path), {})
    assert from_node == launch_tokens.node_signing_key(str(tmp_path), {"CELL_LAUNCH_SECRET": ""}) != shared
    with pytest.raises(ValueError):
        LaunchTokens(b"short")
