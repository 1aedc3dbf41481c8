import pytest

from tests.node import Node


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    """A real node (router, session router, local spawner) shared by the tests."""
    n = Node(tmp_path_factory.mktemp("cell"))
    n.start()
    yield n
    n.stop()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report to fixtures (the browser tests screenshot failures)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def pytest_collection_modifyitems(items):
    """Everything not marked ``unit`` runs against a real node: mark it so (``pytest -m node`` / ``-m unit``)."""
    for item in items:
        if item.get_closest_marker("unit") is None:
            item.add_marker(pytest.mark.node)
