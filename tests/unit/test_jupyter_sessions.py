"""components.router.jupyter.jupyter_sessions: sessions are their principal's, bounded, and end with their kernel."""

import pytest

from components.common import errors
from components.router.jupyter.access import ANONYMOUS, Principal
from components.router.jupyter.jupyter_sessions import MAX_SESSIONS_PER_KERNEL, FaceSessions
from components.router.jupyter.kernels import FaceKernels
from tests.fakes import FakeLink

pytestmark = pytest.mark.unit

TOKEN = Principal("service", "service")
WISH = {"path": "book/page.ipynb", "name": "page.ipynb", "type": "notebook", "kernel": {"name": "python3"}}


class Table:
    """The face's kernels (on a fake in-process link) and sessions; C{start(principal)} gives each kernel a new id."""

    def __init__(self):
        self.link = FakeLink()
        self.kernels = FaceKernels(self.link)
        self.sessions = FaceSessions(self.kernels)
        self.count = 0

    def starter(self, principal):
        def start(name):
            self.count += 1
            self.link.kernel_id = "{:032x}".format(self.count)
            return self.kernels.start(principal, name or "python3", {})

        return start

    def create(self, principal, body=WISH):
        return self.sessions.create(principal, dict(body), self.starter(principal)).result


def test_a_token_gets_its_session_back_by_path_and_an_anonymous_client_never_does():
    table = Table()
    mine = table.create(TOKEN)
    assert table.create(TOKEN).session_id == mine.session_id and table.count == 1
    first, second = table.create(ANONYMOUS), table.create(ANONYMOUS)
    assert first.session_id != second.session_id and first.kernel is not second.kernel
    assert table.sessions.of(ANONYMOUS) == [] and table.sessions.of(TOKEN) == [mine]
    with pytest.raises(errors.NotFound):
        table.sessions.get(mine.session_id, ANONYMOUS)
    with pytest.raises(errors.NotFound):
        table.sessions.get(first.session_id, TOKEN)
    assert table.sessions.get(first.session_id, ANONYMOUS) is first, "the id is the capability"
    model = mine.model()
    assert set(model) >= {"id", "path", "name", "type", "kernel"} and model["kernel"]["name"] == "python3"


def test_sessions_end_with_their_kernel_and_a_kernel_has_a_bounded_number():
    table = Table()
    session = table.create(ANONYMOUS)
    kernel_id = session.kernel.jupyter_id
    on_it = [
        table.create(ANONYMOUS, {"path": "x", "kernel": {"id": kernel_id}}) for _ in range(MAX_SESSIONS_PER_KERNEL - 1)
    ]
    assert all(s.kernel is session.kernel for s in on_it)
    d = table.sessions.create(ANONYMOUS, {"path": "x", "kernel": {"id": kernel_id}}, table.starter(ANONYMOUS))
    assert isinstance(d.result.value, errors.Capacity)
    d.addErrback(lambda failure: None)
    assert len(table.sessions) == MAX_SESSIONS_PER_KERNEL
    table.kernels.shutdown(session.kernel)
    assert len(table.sessions) == 0, "the kernel ended: its sessions with it"
    assert table.kernels.sizes()["face_kernels"] == 0


def test_deleting_a_session_ends_its_kernel_and_bad_input_is_refused():
    table = Table()
    session = table.create(TOKEN)
    table.sessions.delete(session)
    assert len(table.sessions) == 0 and table.kernels.of(TOKEN) == []
    assert any(call.endswith(".shutdown") for call in table.link.calls)
    for bad in ({"path": 7}, {"path": "x" * 5000}, {"kernel": "python3"}, {"kernel": {"id": 5}}):
        d = table.sessions.create(TOKEN, bad, table.starter(TOKEN))
        assert isinstance(d.result.value, errors.InvalidArgument), bad
        d.addErrback(lambda failure: None)
