"""L{components.common.arguments.check_inline_files}: a one-shot's files, checked before anything is written."""

import pytest

from components.common import errors
from components.common.arguments import check_inline_files

pytestmark = pytest.mark.unit


def test_files_map_paths_to_bytes_within_the_budget():
    assert check_inline_files(None, 10) == {}
    assert check_inline_files({"a.txt": b"12345", "b.txt": "ab"}, 10) == {"a.txt": b"12345", "b.txt": "ab"}
    with pytest.raises(errors.InvalidArgument, match="relative paths to bytes"):
        check_inline_files({"a.txt": 5}, 10)
    with pytest.raises(errors.InvalidArgument):
        check_inline_files(["a.txt"], 10)
    with pytest.raises(errors.TooLarge, match="10 bytes in all"):
        check_inline_files({"a": b"123456", "b": b"12345"}, 10)
