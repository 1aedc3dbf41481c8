"""Spawners that joined the realm before the session router, found through their ``info`` registrations."""

from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from components.common import uris


@defer.inlineCallbacks
def spawners_already_there(call):
    """The ``info`` of every spawner registered now (router registration meta API); one that leaves meanwhile is
    skipped.  @param call: the WAMP session's C{call}."""
    infos = []
    listing = yield call(uris.REGISTRATION_LIST)
    for registration_id in listing.get("exact", []):
        try:
            registration = yield call(uris.REGISTRATION_GET, registration_id)
        except ApplicationError:
            continue
        uri = registration.get("uri", "")
        if uri.startswith(uris.SPAWNER_PREFIX) and uri.endswith(".info"):
            try:
                infos.append((yield call(uri)))
            except ApplicationError:
                continue
    return infos
