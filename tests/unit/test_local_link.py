"""components.router.local_link: a resource built after the session joined still gets it (and each rejoin)."""

import pytest
from autobahn.wamp.exception import ApplicationError

from components.router.local_link import LocalLink

pytestmark = pytest.mark.unit


class Session:
    def is_attached(self):
        return True


def test_a_callback_added_after_the_join_runs_at_once_and_again_on_each_rejoin():
    link = LocalLink("test-" + __name__)
    first, second, seen = Session(), Session(), []
    failure = link.call("cell.status")
    failure.addErrback(lambda f: seen.append(f.value.error) if f.check(ApplicationError) else f)
    assert seen == ["cell.error.capacity"], "before the join: the node cannot answer yet"
    link.joined(first)
    link.each_join(seen.append)
    link.left(first)
    link.joined(second)
    assert seen[1:] == [first, second]
    assert LocalLink.named(link.name) is not link  # `named` is the meeting place; made directly, a link is apart
