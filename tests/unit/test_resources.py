"""components.router.jupyter.resources: the generic kernelspec logo, and the kernelspecs' resources naming it."""

import struct
import zlib

import pytest

from components.common import kernelspecs
from components.router.jupyter.resources import CONTENT, FILES, with_resources

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name, size", [("logo-32x32.png", 32), ("logo-64x64.png", 64)])
def test_the_png_logos_are_valid_pngs_of_their_size(name, size):
    content_type, data = CONTENT[name]
    assert content_type == "image/png" and data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (size, size)
    length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    pixels = zlib.decompress(data[41 : 41 + length])
    assert len(pixels) == size * (1 + 4 * size)


def test_every_kernelspec_names_the_logos():
    specs = with_resources(kernelspecs.merged([{"bash": kernelspecs.rest_model("bash", "Bash", "bash")}]))
    for name in ("python3", "bash"):
        resources = specs["kernelspecs"][name]["resources"]
        assert resources == {key: "/jupyter/kernelspecs/{}/{}".format(name, f) for key, f in FILES.items()}
    assert kernelspecs.PYTHON_MODEL["resources"] == {}, "the shared model is not changed"
    assert CONTENT["logo-svg.svg"][1].startswith(b"<svg")
