"""Lone surrogates (``"\\ud800"``): JSON carries them, UTF-8 and msgpack cannot.

A string a kernel, a one-shot or a client wrote as a JSON escape of half a
surrogate pair parses into a Python string that the node's own msgpack links
cannot encode: a message holding one was never passed on, and the call
waiting for it never answered.  What the node reads from a kernel's side is
repaired here (each lone surrogate becomes U+FFFD, as a UTF-8 decoder does
with bytes it cannot read); what a client sends is refused instead
(L{components.common.arguments.check_unicode}).  The walk runs only when the
raw text holds such an escape.
"""

import json
import re

#: the JSON escape of a surrogate code point (high or low), either case
ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
LONE = re.compile("[\ud800-\udfff]")


def may_hold(raw):
    """Whether raw JSON text (bytes or str) may parse into a lone surrogate."""
    return ESCAPE.search(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")) is not None


def repaired(value):
    """C{value} (parsed JSON) with each lone surrogate of its strings, keys included, replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {repaired(k): repaired(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repaired(v) for v in value]
    return value


def loads(raw):
    """``json.loads`` whose strings are valid Unicode (see the module docstring)."""
    value = json.loads(raw)
    return repaired(value) if may_hold(raw) else value
