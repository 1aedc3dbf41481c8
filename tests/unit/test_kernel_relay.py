"""L{components.router.kernel_relay}: the router's errors said in the contract's terms."""

import pytest

pytestmark = pytest.mark.unit


def test_relay_says_router_errors_in_the_contracts_terms():
    from autobahn.wamp.exception import ApplicationError
    from twisted.python.failure import Failure

    from components.common import errors
    from components.router.kernel_relay import translate_failure

    def translated(error):
        try:
            translate_failure(Failure(error), "k1")
        except Exception as exc:
            return exc
        raise AssertionError("not translated")

    gone = translated(ApplicationError("wamp.error.canceled", "callee disconnected from in-flight request"))
    assert isinstance(gone, errors.KernelDied) and "k1" in gone.message and "cell.kernel.start" in gone.message
    unknown = translated(ApplicationError("wamp.error.no_such_procedure", "no callee"))
    assert isinstance(unknown, errors.NotFound) and "k1" in unknown.message
    passed_on = translate_failure(Failure(errors.TooLarge("big")), "k1")
    assert isinstance(passed_on.value, errors.TooLarge), "the kernel's own errors reach the client unchanged"
