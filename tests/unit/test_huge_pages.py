"""L{components.child.huge_pages}: which ranges of a master's memory may take huge pages."""

import pytest

pytestmark = pytest.mark.unit


def test_huge_page_ranges_are_private_anonymous_and_aligned():
    from components.child.huge_pages import anonymous_writable_ranges

    maps = "\n".join(
        (
            "55d0c0000000-55d0c0a00000 rw-p 00000000 00:00 0          [heap]",
            "7f0000100000-7f0000700000 rw-p 00000000 00:00 0 ",
            "7f0001000000-7f0001100000 rw-p 00000000 00:00 0 ",  # under 2 MiB once aligned
            "7f0002000000-7f0004000000 rw-s 00000000 00:05 12         /dev/zero (deleted)",  # shared
            "7f0006000000-7f0008000000 r--p 00000000 08:01 3          /usr/lib/libc.so.6",
            "7f000a000000-7f000c000000 rw-p 00000000 08:01 3          /usr/lib/libfoo.so",  # file-backed
        )
    )
    assert list(anonymous_writable_ranges(maps)) == [(0x55D0C0000000, 0x55D0C0A00000), (0x7F0000200000, 0x7F0000600000)]
