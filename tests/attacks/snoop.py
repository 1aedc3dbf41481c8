"""Run inside a kernel by tests/test_kernel_escape.py: everything a hostile kernel would try.

    python snoop.py [--no-walk] [--key KEYFILE] SECRET_HEX SINCE PATH...

- every unix socket of another user it can find (a walk of the file system;
  its own are its kernel's ZMQ channels) and each PATH given: connect, and try to join realm ``cell`` with each serializer,
  anonymously and with a cryptosign key of its own;
- every regular file it can read that changed since SINCE (a Unix time): does
  it hold the secret (given hex-encoded, so that this command line is the only
  place it is written)?
- each PATH: can it be opened for reading?

``--key`` signs with that key file instead of a key of its own (the tests'
control: with the node's key, it must join).  Prints one JSON object.  Uses only the standard library and autobahn
(asyncio), as an attacker with the kernel's Python would.
"""

import asyncio
import json
import os
import stat
import sys

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.wamp.cryptosign import CryptosignKey
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig

PSEUDO = ("/proc", "/sys", "/dev")


def walk():
    """Sockets, and readable regular files changed since SINCE, found from /."""
    sockets, recent = [], []
    for root, dirs, files in os.walk("/"):
        if root in PSEUDO:
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISSOCK(info.st_mode) and info.st_uid != os.getuid():
                sockets.append(path)
            elif stat.S_ISREG(info.st_mode) and info.st_mtime >= SINCE and info.st_size < 64 << 20:
                recent.append(path)
    return sockets, recent


def holds_secret(path):
    try:
        with open(path, "rb") as f:
            return SECRET in f.read()
    except OSError:
        return False


class Probe(ApplicationSession):
    def __init__(self, config, done, authmethod):
        super().__init__(config)
        self._done = done
        self._authmethod = authmethod
        self._key = CryptosignKey.from_keyfile(KEY_FILE) if KEY_FILE else CryptosignKey.from_bytes(os.urandom(32))

    def onConnect(self):
        if self._authmethod == "cryptosign":
            self.join(
                "cell", authmethods=["cryptosign"], authid="spawner_local", authextra={"pubkey": self._key.public_key()}
            )
        else:
            self.join("cell")

    def onChallenge(self, challenge):
        return self._key.sign_challenge(challenge)

    def onJoin(self, details):
        if not self._done.done():
            self._done.set_result("JOINED as {}".format(details.authrole))
        self.leave()

    def onLeave(self, details):
        if not self._done.done():
            self._done.set_result("refused: {}".format(details.reason))
        self.disconnect()


async def try_join(path, serializer, authmethod):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    factory = WampRawSocketClientFactory(
        lambda: Probe(ComponentConfig("cell"), done, authmethod), serializer=serializer
    )
    try:
        transport, _ = await asyncio.wait_for(loop.create_unix_connection(factory, path), 3)
    except (OSError, asyncio.TimeoutError) as exc:
        return "cannot connect: {}".format(type(exc).__name__)
    try:
        return await asyncio.wait_for(done, 3)
    except asyncio.TimeoutError:
        return "no answer"
    finally:
        transport.close()


async def main(paths, no_walk):
    sockets, recent = ([], []) if no_walk else walk()
    attempts = {}
    for path in sorted(set(sockets) | set(paths)):
        for serializer in (JsonSerializer(), MsgPackSerializer(), CBORSerializer()):
            for authmethod in ("anonymous", "cryptosign"):
                key = "{} {} {}".format(path, serializer.SERIALIZER_ID, authmethod)
                attempts[key] = await try_join(path, serializer, authmethod)
    readable = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                f.read(1)
            readable.append(path)
        except OSError:
            pass
    print(
        json.dumps(
            {
                "sockets_found": sockets,
                "attempts": attempts,
                "files_checked": len(recent),
                "files_with_secret": [p for p in recent if holds_secret(p)],
                "readable": readable,
            }
        )
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    no_walk = args[:1] == ["--no-walk"]
    args = args[1:] if no_walk else args
    KEY_FILE = None
    if args[:1] == ["--key"]:
        KEY_FILE, args = args[1], args[2:]
    SECRET = bytes.fromhex(args[0])
    SINCE = float(args[1])
    asyncio.run(main(args[2:], no_walk))
