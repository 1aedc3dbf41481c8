"""L{components.child.sandbox}: a kernel's PATH."""

import pytest

pytestmark = pytest.mark.unit


def test_a_kernels_path_has_its_own_python_first_and_only_usable_directories():
    import os
    import shutil
    import tempfile

    from components.child.sandbox import kernel_path

    root = tempfile.mkdtemp()  # not pytest's tmp_path: that one is closed to other users
    try:
        os.chmod(root, 0o755)
        closed = os.path.join(root, "closed")
        os.mkdir(closed, 0o700)
        assert closed not in kernel_path(closed).split(os.pathsep)
        opened = os.path.join(root, "bin")
        os.mkdir(opened, 0o755)
        path = kernel_path(opened).split(os.pathsep)
        assert path[0] == opened and len(path) == len(set(path))
        assert all(os.stat(d).st_mode & 0o005 == 0o005 for d in path)
    finally:
        shutil.rmtree(root)
