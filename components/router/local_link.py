"""A WAMP session inside the router process, for the router's web resources (the Jupyter face, the node pages,
SageMathCell's service).

Why in process: a resource that reached the node as a client of its own
backend socket paid, for every message, a serialization and a socket write
in this process, then a read and a parse in this same process on the
router's side, and the same again on the way back (an execute on the Jupyter
face is about a dozen messages).  A Crossbar *router component* is joined over
function calls instead (``RouterApplicationSession``), as the kernel relay is.

Why a meeting place: Crossbar builds a web resource with nothing but its
path's ``extra``, and a router component with nothing but its own config; the
two cannot be handed to each other.  So the component (L{LocalLinkSession},
listed in the router worker's ``components`` with ``extra: {"link": name}``)
announces itself to the process's L{LocalLink} of that name, which the
resources hold.  Crossbar starts a router's components before its transports,
so the session is there before the first request; a resource that asks sooner
gets ``cell.error.capacity``, as when the node cannot answer.

The session takes no INTERRUPT (no ``call_canceling``, as the kernel relay,
whose docstring says why a router component cannot).
"""

from autobahn.twisted.wamp import ApplicationSession
from autobahn.wamp import role
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions
from twisted.internet import defer
from twisted.logger import Logger

from components.common import uris

#: how long a call waits for the node's processes
ANSWER_TIMEOUT_MS = 5000

#: the link the router's resources use unless their ``extra`` names another
DEFAULT_LINK = "router"


class LocalLink:
    """The resources' side: the in-process session of one name, once it joined.

    One per name in the router process (L{named}): the meeting place of the
    module docstring.  L{each_join} callbacks run with the session, now and after each rejoin, so a resource can
    register its own procedures.
    """

    log = Logger()
    _links = {}  # name -> LocalLink, for this process (see the module docstring)

    def __init__(self, name):
        self.name = name
        self.session = None
        self.on_join = []

    @classmethod
    def named(cls, name=DEFAULT_LINK):
        link = cls._links.get(name)
        if link is None:
            link = cls._links[name] = cls(name)
        return link

    def each_join(self, callback):
        """Call C{callback(session)} with the session now if it has joined (Crossbar starts the router's components
        before its transports, so usually it has), and again after each rejoin."""
        self.on_join.append(callback)
        if self.connected:
            callback(self.session)

    def joined(self, session):
        self.session = session
        for callback in list(self.on_join):
            callback(session)

    def left(self, session):
        if self.session is session:
            self.session = None

    @property
    def connected(self):
        return self.session is not None and self.session.is_attached()

    def call(self, procedure, *args, timeout_ms=ANSWER_TIMEOUT_MS, **kwargs):
        if not self.connected:
            return defer.fail(
                ApplicationError(
                    uris.ERROR_CAPACITY,
                    "the router's in-process session {!r} has not joined (is the router component "
                    "components.router.local_link.LocalLinkSession configured?)".format(self.name),
                )
            )
        return self.session.call(procedure, *args, options=CallOptions(timeout=timeout_ms), **kwargs)


class LocalLinkSession(ApplicationSession):
    """The router component's side: joins the realm in process and hands itself to its L{LocalLink}."""

    def __init__(self, config=None):
        super().__init__(config)
        roles = dict(self._session_roles)
        roles["callee"] = role.RoleCalleeFeatures(
            caller_identification=True, progressive_call_results=True, call_canceling=False
        )
        self._session_roles = roles
        self.link = LocalLink.named((config.extra or {}).get("link", DEFAULT_LINK) if config else DEFAULT_LINK)

    def onJoin(self, details):
        self.log.info("router's in-process link {name!r} joined", name=self.link.name)
        self.link.joined(self)

    def onLeave(self, details):
        self.link.left(self)
        super().onLeave(details)
