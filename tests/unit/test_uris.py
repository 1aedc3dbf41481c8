"""L{components.common.uris}: a kernel's URIs are split in one place."""

import pytest

pytestmark = pytest.mark.unit


def test_kernel_uris_split_in_one_place():
    from components.common.uris import split_kernel_uri
    from components.router.authorization import kernel_of

    assert split_kernel_uri("cell.kernel.abc.execute") == ("abc", "execute")
    assert split_kernel_uri("cell.kernel.abc.files.get") == ("abc", "files.get")
    assert split_kernel_uri("cell.kernel.abc") == (None, None)
    assert split_kernel_uri("cell.kernel..execute") == (None, None)
    assert split_kernel_uri("cell.status") == (None, None)
    assert kernel_of("cell.kernel.abc.iopub") == "abc" and kernel_of("cell.kernel.abc") is None
