"""``cell.backend.execute_http``: a one-shot for a client of the node's HTTP API (components.router.http_api).

As ``cell.execute`` of a session of C{role} ("browser" for an anonymous client, "service" for a token's) at the
HTTP client's address, resolved by the node's one resolver (a client's own ``X-Forwarded-For`` counts only from a
front in ``trusted_proxies``): the same code limit, timeout, quotas per address (rate, at once, kernels) and
progressive results.  Its rate "per session" is counted under ``http:<address>`` for an anonymous client (shared
with SageMathCell's ``POST /service``) and ``http:token:<principal>`` for a token's principal.
"""

from components.common import arguments, errors


def execute_http(
    control,
    client,
    principal,
    role,
    progress,
    code,
    timeout=None,
    user_expressions=None,
    stop_on_error=True,
    files=None,
    return_files=False,
    kernel_name=None,
):
    """Run the one-shot on C{control} (the session router's L{ControlPlane}); C{client}: the request's transport
    (components.common.addresses.http_client); C{progress}: the WAMP call's progress callable, or None."""
    principal = arguments.check_str("principal", principal, 256)
    if role not in control.quotas:
        raise errors.InvalidArgument("unknown role {!r}".format(role))
    address = control.addresses.resolve(client)
    caller = "http:" + ("token:" + principal if principal else address)
    return control.oneshots.execute(
        caller,
        role,
        progress,
        code,
        timeout,
        user_expressions,
        stop_on_error,
        files,
        return_files,
        kernel_name,
        address=address,
    )
