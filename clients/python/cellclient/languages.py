"""Language names as callers say them, and the node's kernelspec names."""

from __future__ import annotations

from typing import Optional

from . import errors

__all__ = ["kernel_name_of"]

#: the languages' kernelspec names where they differ (Python's default kernel is forked: the fastest path)
_KERNEL_NAMES: dict[str, Optional[str]] = {"python": None, "python3": None, "py": None, "r": "ir", "sage": "sagemath"}


def kernel_name_of(language: Optional[str]) -> Optional[str]:
    """The node's ``kernel_name`` for C{language} (``"python"`` -> the default kernel, ``"r"`` -> ``"ir"``, ...)."""
    if language is None:
        return None
    if not isinstance(language, str):
        raise errors.InvalidArgument("language must be a string such as 'python', 'bash' or 'r'")
    return _KERNEL_NAMES.get(language.lower(), language)
