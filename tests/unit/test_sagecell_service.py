"""components.router.sagecell_service: SageMathCell's languages, its /service form and answer, its zip encoding."""

import base64
import zlib

import pytest

from components.common.kernelspecs import PYTHON_MODEL, rest_model
from components.router.sagecell_service import (
    LANGUAGES,
    HttpError,
    kernel_name_for,
    language_of,
    service_reply,
    service_request,
    zipped,
)

pytestmark = pytest.mark.unit

SPECS = {
    "python3": PYTHON_MODEL,
    "sagemath": rest_model("sagemath", "SageMath", "sage"),
    "ir": rest_model("ir", "R", "R"),
    "gap-4": rest_model("gap-4", "GAP 4", "gap"),
    "xeus-gp": rest_model("xeus-gp", "GP (xeus)", "gp"),
    "pari_jupyter": rest_model("pari_jupyter", "PARI/GP", "gp"),
    "maxima-ish": rest_model("maxima-ish", "Maxima", "Maxima"),
}


def test_sagecell_language_names_map_to_the_kernelspecs_offered():
    assert kernel_name_for("sage", SPECS) == "sagemath" and kernel_name_for("Python", SPECS) == "python3"
    assert kernel_name_for("r", SPECS) == "ir" and kernel_name_for("gap", SPECS) == "gap-4"
    assert kernel_name_for("gp", SPECS) == "pari_jupyter", "the table's order of preference"
    assert kernel_name_for("maxima", SPECS) == "maxima-ish", "a kernelspec of that language serves it too"
    assert kernel_name_for("singular", SPECS) is None and kernel_name_for("sage", {"python3": PYTHON_MODEL}) is None
    assert set(LANGUAGES) >= {"sage", "python", "r", "gp", "gap", "singular", "octave", "maxima"}


def test_stored_languages_read_back_as_sagecell_names():
    assert [language_of(n) for n in ("python3", "python", "sagemath", "ir", "gap-4", "bash")] == [
        "python",
        "python",
        "sage",
        "r",
        "gap",
        "bash",
    ]


def test_zipped_is_sagecells_encoding():
    code = "plot(sin(x), (x, 0, 2*pi))  # ü"
    assert zlib.decompress(base64.urlsafe_b64decode(zipped(code))).decode() == code


def test_a_service_form_is_read_as_sagecell_reads_it():
    assert service_request({"code": ["print(1)\n", "print(2)"]}) == ("print(1)\nprint(2)", None, {})
    assert service_request({"code": ["1"], "language": ["r"], "user_expressions": ['{"a": "1+1"}']}) == (
        "1",
        "r",
        {"a": "1+1"},
    )
    for fields, status in [
        ({}, 400),
        ({"code": ["x" * 65001]}, 413),
        ({"code": ["1"], "user_expressions": ["nope"]}, 400),
        ({"code": ["1"], "user_expressions": ['{"a": 1}']}, 400),
    ]:
        with pytest.raises(HttpError) as raised:
            service_request(fields)
        assert raised.value.code == status, fields


def test_a_result_becomes_sagecells_answer():
    result = {
        "status": "ok",
        "execution_count": 1,
        "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "a\n"},
            {"output_type": "execute_result", "data": {"text/plain": "3"}},
            {"output_type": "stream", "name": "stdout", "text": ["b", "\n"]},
        ],
        "user_expressions": {"x": {"status": "ok", "data": {"text/plain": "2"}, "metadata": {}}},
    }
    reply = service_reply(result)
    assert reply["success"] is True and reply["stdout"] == "a\nb\n" and "stderr" not in reply
    assert reply["execute_reply"] == {
        "status": "ok",
        "execution_count": 1,
        "user_expressions": result["user_expressions"],
        "payload": [],
    }
    failed = service_reply({"status": "error", "outputs": [], "ename": "E", "evalue": "v", "traceback": ["t"]})
    assert failed["success"] is False and failed["stdout"] == "" and failed["execute_reply"]["ename"] == "E"
    timed_out = service_reply(
        {"status": "timeout", "outputs": [{"output_type": "stream", "name": "stderr", "text": "x"}]}
    )
    assert timed_out["success"] is False and "execute_reply" not in timed_out and timed_out["stderr"] == "x"


def test_a_quota_is_429_and_a_node_without_room_503():
    from components.common import errors
    from components.router.sagecell_service import http_status

    quota = errors.Capacity("too many one-shot executions from your address", limit=10)
    busy = errors.Capacity("the sagemath fork master is being restarted; try again in a moment")
    assert http_status(quota.error, quota.kwargs) == 429 and http_status(busy.error, busy.kwargs) == 503
    assert http_status("cell.error.too_large", {}) == 413 and http_status("wamp.error.no_such_procedure", {}) == 503
