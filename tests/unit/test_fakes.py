"""tests/fakes.py tells the truth: every public method of a fake has the signature of the real class's method.

A fake that drifts from its class (as C{FakeChannels.request} once did from C{KernelChannels.request}) lets a test
pass against calls the real class refuses; here a change to the real class breaks a test instead.
"""

import inspect

import pytest

from tests import fakes

pytestmark = pytest.mark.unit

FAKES = [c for c in vars(fakes).values() if inspect.isclass(c) and c.__module__ == fakes.__name__]


def shape(function):
    """What a caller relies on: each parameter's name, kind and default (annotations aside)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def methods(cls):
    """The methods a fake defines: its public ones and its constructor."""
    return {
        name: value
        for name, value in vars(cls).items()
        if inspect.isfunction(value) and (name == "__init__" or not name.startswith("_"))
    }


def mismatches(fake):
    """What is wrong with C{fake} against C{fake.fakes}, one line each (none when it tells the truth)."""
    real, test_only = fake.fakes, fake.__dict__.get("test_only", ())
    found = []
    for name, method in methods(fake).items():
        if name in test_only:
            continue
        if not hasattr(real, name):
            found.append(
                "{}.{}: {} has no such method (renamed? or list it in test_only)".format(
                    fake.__name__, name, real.__name__
                )
            )
        elif shape(method) != shape(getattr(real, name)):
            found.append(
                "{}.{}{} differs from {}.{}{}".format(
                    fake.__name__,
                    name,
                    inspect.signature(method),
                    real.__name__,
                    name,
                    inspect.signature(getattr(real, name)),
                )
            )
    for name in test_only:
        if name not in methods(fake):
            found.append("{}.test_only names {}, which it does not define".format(fake.__name__, name))
        elif name != "__init__" and hasattr(real, name):
            found.append("{}.{} is the real class's method, not a test's: it must match".format(fake.__name__, name))
    return found


def test_there_are_fakes_and_each_names_the_real_class_it_stands_in_for():
    assert len(FAKES) >= 4
    for fake in FAKES:
        real = fake.__dict__.get("fakes")
        assert inspect.isclass(real), "{} must say which class it fakes (fakes = TheRealClass)".format(fake.__name__)
        assert not real.__module__.startswith("tests"), "{} fakes a class of the tests".format(fake.__name__)


@pytest.mark.parametrize("fake", FAKES, ids=lambda fake: fake.__name__)
def test_each_method_of_a_fake_has_the_real_methods_signature(fake):
    assert mismatches(fake) == []


def test_the_check_refuses_a_fake_that_drifted():
    class Drifted(fakes.FakeChannels):
        fakes = fakes.FakeChannels.fakes
        test_only = ("gone",)

        def request(self, channel, msg_type, content, parent=None):  # before metadata, buffers and header
            return "id"

        def close(self, now):
            pass

        def renamed(self):
            pass

    found = mismatches(Drifted)
    assert len(found) == 4, found
    assert any("Drifted.request(self, channel, msg_type, content, parent=None) differs" in line for line in found)
    assert any(line.startswith("Drifted.close(self, now) differs") for line in found)
    assert any("Drifted.renamed: KernelChannels has no such method" in line for line in found)
    assert any("test_only names gone" in line for line in found)


def test_no_fake_lives_outside_tests_fakes():
    import pathlib
    import re

    tests = pathlib.Path(fakes.__file__).parent
    strays = [
        "{}: {}".format(path.relative_to(tests), match.group(1))
        for path in sorted(tests.rglob("*.py"))
        if path.name != "fakes.py"
        for match in re.finditer(r"^class (_?Fake\w*)", path.read_text(), re.MULTILINE)
    ]
    assert strays == [], "a fake of a real class goes to tests/fakes.py (with fakes = and test_only =)"
