"""components.common.surrogates: lone surrogates become U+FFFD; valid text, pairs included, is left as it is."""

import pytest

from components.common import surrogates

pytestmark = pytest.mark.unit


def test_lone_surrogates_in_strings_and_keys_are_replaced_and_pairs_are_kept():
    raw = b'{"a\\ud800": ["x\\uDFFF", "\\ud83d\\ude00", 1, null]}'
    assert surrogates.loads(raw) == {"a\ufffd": ["x\ufffd", "\U0001f600", 1, None]}
    assert surrogates.loads('{"text": "\\u00e9t\\u00e9"}') == {"text": "été"}
    assert not surrogates.may_hold(b'{"text": "\\u00e9"}') and surrogates.may_hold('"\\uDbff"')
