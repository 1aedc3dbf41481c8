"""Kernelspec resources (``/jupyter/kernelspecs/<name>/<file>``): the logos Jupyter's clients show beside a kernel.

Jupyter Server serves each kernelspec's resource files and lists their URLs in
the kernelspec model's ``resources``.  A kernel's files live on the workers,
not in the router, so the face serves one generic logo of the node's for
every kernelspec it offers: an SVG and the two PNG sizes Jupyter names, drawn
here (a blue disc with a white ring), so there is no file to ship or find.
"""

import struct
import zlib

#: Jupyter's resource names and the file each is served as
FILES = {"logo-svg": "logo-svg.svg", "logo-32x32": "logo-32x32.png", "logo-64x64": "logo-64x64.png"}

BLUE = (42, 108, 176)
WHITE = (255, 255, 255)

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
    '<circle cx="32" cy="32" r="30" fill="#2a6cb0"/>'
    '<circle cx="32" cy="32" r="15" fill="none" stroke="#fff" stroke-width="7"/></svg>'
).encode()


def _png(size):
    """The logo as an RGBA PNG of C{size} x C{size} pixels."""
    rows = []
    centre = (size - 1) / 2
    for y in range(size):
        row = bytearray([0])  # filter: none
        for x in range(size):
            r = ((x - centre) ** 2 + (y - centre) ** 2) ** 0.5 / (size / 2)
            if r > 30 / 32:
                row += bytes((0, 0, 0, 0))
            elif 11.5 / 32 <= r <= 18.5 / 32:
                row += bytes(WHITE + (255,))
            else:
                row += bytes(BLUE + (255,))
        rows.append(bytes(row))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


#: file name -> (content type, bytes)
CONTENT = {
    "logo-svg.svg": ("image/svg+xml", SVG),
    "logo-32x32.png": ("image/png", _png(32)),
    "logo-64x64.png": ("image/png", _png(64)),
}


def with_resources(specs, prefix="/jupyter/kernelspecs"):
    """C{specs} (``GET /api/kernelspecs``'s answer) with each kernelspec's ``resources`` naming the logo's URLs."""
    kernelspecs = {}
    for name, spec in specs["kernelspecs"].items():
        urls = {key: "{}/{}/{}".format(prefix, name, file) for key, file in FILES.items()}
        kernelspecs[name] = dict(spec, resources=urls)
    return dict(specs, kernelspecs=kernelspecs)
