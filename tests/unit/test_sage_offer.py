"""L{components.worker.sage_offer}: Sage offered where its environment is, and how to get it where it is not."""

import json
import os
import sys

import pytest

from components.common.kernelspecs import SAGE
from components.worker import sage_offer
from components.worker.kernel_environment import KernelEnvironment

pytestmark = pytest.mark.unit


def test_no_sage_python_means_no_sage_and_nothing_to_say():
    offer = sage_offer.SageOffer("")
    assert not offer.offered and offer.missing is None


def test_a_missing_environment_says_how_to_get_sage(tmp_path):
    offer = sage_offer.SageOffer(str(tmp_path / "nowhere" / "bin" / "python"))
    assert not offer.offered
    assert "make sage" in offer.missing and str(tmp_path / "nowhere") in offer.missing


def test_a_relative_sage_python_is_found_in_the_project(monkeypatch, tmp_path):
    monkeypatch.setattr(sage_offer, "PROJECT", str(tmp_path))
    offer = sage_offer.SageOffer(".sage-venv/bin/python")
    assert str(tmp_path / ".sage-venv" / "bin" / "python") in offer.missing


def test_the_kernelspec_is_named_as_the_environments_own(monkeypatch, tmp_path):
    spec = tmp_path / "share" / "jupyter" / "kernels" / SAGE
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"display_name": "passagemath 10.8.13", "argv": ["python3"]}))
    monkeypatch.setattr(KernelEnvironment, "prefix", lambda self: str(tmp_path))
    offer = sage_offer.SageOffer(sys.executable)
    assert offer.offered
    model = offer.model()
    assert model["name"] == SAGE
    assert model["spec"]["display_name"] == "passagemath 10.8.13"
    assert model["spec"]["language"] == "sage"
    assert model["spec"]["argv"] == [], "the worker's disk stays on the worker"
    os.remove(spec / "kernel.json")
    assert sage_offer.SageOffer(sys.executable).model()["spec"]["display_name"] == "SageMath"
