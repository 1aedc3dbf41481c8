"""The C library, loaded once.

Loaded at import, in a fork master before it forks: a child that loaded its
own would copy the pages that loading touches (0.15 MB per kernel).
"""

import ctypes

LIBC = ctypes.CDLL(None, use_errno=True)
