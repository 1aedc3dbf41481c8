"""tests/unit mirrors components/: each tests/unit/test_<name>.py tests the module components/**/<name>.py.

So the unit tests of a module are found, and added, in one place.  Where two modules share a name
(metrics.py, kernelspecs.py), the file says whose: test_<package>_<name>.py.
"""

import collections
import pathlib

import pytest

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[2]

#: unit test files that test no module of components/, and why
NOT_A_MODULE = {
    "fakes": "checks tests/fakes.py against the real classes",
    "layout_of_tests": "this check",
}

#: names of several modules whose test file keeps the bare name, and why
SHARED_NAMES = {
    "kernelspecs": "python3's one spec (common/kernelspecs.py) as the spawner's Kernelspecs (worker/) answers it",
}


def modules():
    """Each module's name -> the packages (directories) holding a module of that name."""
    found = collections.defaultdict(set)
    for path in (ROOT / "components").rglob("*.py"):
        if path.name != "__init__.py":
            found[path.stem].add(path.parent.name)
    return found


def unit_test_names():
    return sorted(path.stem[len("test_") :] for path in (ROOT / "tests" / "unit").glob("test_*.py"))


def problem(name, known):
    """Why tests/unit/test_<name>.py mirrors no module (None when it does)."""
    if name in NOT_A_MODULE:
        return None
    if name in known:
        if len(known[name]) > 1 and name not in SHARED_NAMES:
            return "test_{}.py: several modules are named {}.py ({}): call it test_<package>_{}.py".format(
                name, name, ", ".join(sorted(known[name])), name
            )
        return None
    for index in [i for i, c in enumerate(name) if c == "_"]:
        package, module = name[:index], name[index + 1 :]
        if package in known.get(module, ()):
            return None
    return "test_{}.py: no module components/**/{}.py (nor components/**/<package>/<module>.py for it)".format(
        name, name
    )


def test_each_unit_test_file_is_named_after_the_module_it_tests():
    known = modules()
    assert "placement" in known and "metrics" in known, "components/ was found"
    assert [p for p in (problem(name, known) for name in unit_test_names()) if p] == []


def test_each_unit_test_file_is_marked_unit():
    unmarked = [
        path.name
        for path in (ROOT / "tests" / "unit").glob("test_*.py")
        if "pytestmark = pytest.mark.unit" not in path.read_text()
    ]
    assert unmarked == [], "pytest -m unit runs them all"


def test_the_check_knows_a_stray_file_from_a_mirrored_one():
    known = {"placement": {"control"}, "metrics": {"common", "worker"}, "service": {"control"}}
    assert problem("placement", known) is None
    assert problem("control_service", known) is None
    assert problem("worker_metrics", known) is None
    assert "several modules" in problem("metrics", known)
    assert "no module" in problem("units", known)
    assert "no module" in problem("router_placement", known)
