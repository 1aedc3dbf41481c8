import pytest

from tests.node import Node


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    """A real node (router, session router, local spawner) shared by the tests."""
    n = Node(tmp_path_factory.mktemp("cell"))
    n.start()
    yield n
    n.stop()
