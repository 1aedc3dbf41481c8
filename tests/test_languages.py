"""Kernels of other languages (bash_kernel, IRkernel) over WAMP, against a real node; and their parts, unit-tested.

The node's spawner offers every kernelspec it finds besides the forked
``python3``: ``make setup`` installs bash_kernel's, ``make languages`` (part of
``make test``) IRkernel's, and with the Sage environment (``make sage``)
passagemath's GP, GAP and Singular kernels.  The sandbox checks need a root
spawner (as in CI).
"""

import json
import os
import re

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock

from components.common import errors
from components.common.config import ConfigError, SpawnerConfig, from_mapping
from components.common.kernelspecs import PYTHON, merged
from components.control.placement import Placement
from components.worker.kernelspecs import Kernelspecs
from components.worker.watchdog import Watchdog
from tests.helpers import call, expect_error, until
from tests.node import Node, processes_under, spawner_processes, spawner_settings, with_sage
from tests.test_strangers import CANARY_ENV, gone, processes_named
from tests.wamp_client import Recorder, connect, within

#: each language's kernelspec, a line that prints, and what it prints; its own pid; its uid (from /proc: base R
#: has no getuid); a TCP connection to the node's port that succeeds only with network access
LANGUAGES = {
    "bash": {
        "hello": ("echo hi", "hi\n"),
        "pid": "echo $PPID",  # the shell's parent is the kernel (bash_kernel runs bash under a pty)
        "uid": "id -u",
        "connect": "(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED || echo REFUSED",
        "status": "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; grep memory /proc/self/cgroup; ulimit -v",
        "write_system": "touch /usr/cellserver-probe 2>&1; true",
        "nice": "cut -d' ' -f19 /proc/$$/stat",  # the shell's niceness (a session of its own, under a pty)
        "marker": "bash_kernel",
    },
    "ir": {
        "hello": ("1 + 1", "[1] 2"),
        "pid": "cat(Sys.getpid())",
        "uid": 'cat(strsplit(grep("^Uid:", readLines("/proc/self/status"), value = TRUE), "\\\\s+")[[1]][2])',
        "connect": (
            "cat(tryCatch({{con <- socketConnection('127.0.0.1', {port}, open = 'r+b', timeout = 3); close(con); "
            "'CONNECTED'}}, error = function(e) 'REFUSED', warning = function(w) 'REFUSED'))"
        ),
        "status": (
            'cat(grep("^(Seccomp|NoNewPrivs):", readLines("/proc/self/status"), value = TRUE), '
            'grep("memory", readLines("/proc/self/cgroup"), value = TRUE), sep = "\\n")'
        ),
        "write_system": (
            'cat(tryCatch(file.create("/usr/cellserver-probe"), warning = function(w) conditionMessage(w)))'
        ),
        "nice": 'cat(strsplit(readLines("/proc/self/stat"), " ")[[1]][19])',
        "marker": "IRkernel::main",
    },
}

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the kernel sandbox (own uid, own network namespace) needs a root spawner; CI runs as root",
)


def text_of(result):
    """What an execution showed: its stream text and the text/plain of its displays, in order."""
    parts = []
    for output in result["outputs"]:
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("display_data", "execute_result"):
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


async def start(session, kernel_name):
    result = await within(
        session.call("cell.kernel.start", kernel_name=kernel_name), 60, "a {} kernel".format(kernel_name)
    )
    assert result["kernel_name"] == kernel_name
    assert result["iopub"] == "cell.kernel.{}.iopub".format(result["kernel_id"])
    return result["kernel_id"]


async def language_pool_ready(session, kernel_name, seconds=60):
    async def ready():
        status = await session.call("cell.status")
        return status["spawners"][0].get("language_pools", {}).get(kernel_name, 0) >= 1

    await until(ready, seconds, "a ready {} kernel in the pool".format(kernel_name))


# -- against a real node ------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_kernelspecs_lists_python_bash_and_r_in_jupyters_shape(node):
    session = await connect(node.url, serializers=["json"])
    specs = await session.call("cell.kernelspecs")
    assert specs["default"] == "python3"
    assert {"python3", "bash", "ir"} <= set(specs["kernelspecs"])
    for name, model in specs["kernelspecs"].items():
        assert model["name"] == name
        assert set(model["spec"]) == {"display_name", "language", "argv", "interrupt_mode", "env", "metadata"}
        assert model["spec"]["argv"] == [] and model["spec"]["env"] == {}, "they describe the worker's disk"
        assert model["resources"] == {}
    assert specs["kernelspecs"]["python3"]["spec"]["language"] == "python"
    assert specs["kernelspecs"]["bash"]["spec"]["language"] == "bash"
    assert specs["kernelspecs"]["ir"]["spec"]["language"] == "R"
    status = await session.call("cell.status")
    assert set(status["spawners"][0]["language_pools"]) == {"bash", "ir"}
    session.leave()


@pytest.mark.parametrize("kernel_name", ["bash", "ir"])
@pytest_twisted.ensureDeferred
async def test_a_kernel_of_another_language_runs_code_and_publishes_its_iopub(node, kernel_name):
    session = await connect(node.url)
    kernel_id = await start(session, kernel_name)
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    code, shown = LANGUAGES[kernel_name]["hello"]
    progress = []
    from autobahn.wamp.types import CallOptions

    result = await call(session, kernel_id, "execute", code, options=CallOptions(on_progress=progress.append))
    assert result["status"] == "ok", result
    assert shown in text_of(result)
    assert progress, "outputs arrive as progressive results too"
    await events.wait_for(
        lambda e: (
            e["header"]["msg_type"] == "status"
            and e["content"]["execution_state"] == "idle"
            and e["parent_header"].get("msg_type") == "execute_request"
        ),
        what="the idle status of the execute on iopub",
    )
    await call(session, kernel_id, "shutdown")
    await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", what="the dead event")
    session.leave()


@pytest.mark.parametrize("kernel_name", ["bash", "ir"])
@pytest_twisted.ensureDeferred
async def test_a_one_shot_runs_in_another_language(node, kernel_name):
    session = await connect(node.url)
    code, shown = LANGUAGES[kernel_name]["hello"]
    result = await within(session.call("cell.execute", code, kernel_name=kernel_name), 60, "a one-shot")
    assert result["status"] == "ok", result
    assert shown in text_of(result)
    session.leave()


@needs_root
@pytest.mark.parametrize("kernel_name", ["bash", "ir"])
@pytest_twisted.ensureDeferred
async def test_kernels_of_other_languages_run_sandboxed_as_another_uid_without_network(node, kernel_name):
    language = LANGUAGES[kernel_name]
    session = await connect(node.url)
    kernel_id = await start(session, kernel_name)
    uid = int(text_of(await call(session, kernel_id, "execute", language["uid"])).strip())
    assert uid >= SpawnerConfig().sandbox_uid_base, "the kernel runs as a sandbox uid, not root"
    connect_code = language["connect"].format(port=node.port)
    assert "REFUSED" in text_of(await call(session, kernel_id, "execute", connect_code)), "no route to the node"
    status = text_of(await call(session, kernel_id, "execute", language["status"]))
    sandbox = (await session.call("cell.status"))["spawners"][0]["sandbox"]
    if sandbox["syscall_filter"]:
        assert "Seccomp:\t2" in status and "NoNewPrivs:\t1" in status, status
    if sandbox["memory_cgroup"]:
        assert re.search(r"cellserver-local-\d+/{}-".format(kernel_id), status), status
    if kernel_name == "bash":
        assert str(SpawnerConfig().limit_address_space_mb * 1024) in status, "the rlimits apply: " + status
    if sandbox["own_filesystem_view"]:
        written = text_of(await call(session, kernel_id, "execute", language["write_system"]))
        assert "Read-only file system" in written, written
    # The same code in a one-shot: its kernel is sandboxed the same way.
    result = await within(session.call("cell.execute", language["uid"], kernel_name=kernel_name), 60, "a one-shot")
    assert int(text_of(result).strip()) >= SpawnerConfig().sandbox_uid_base
    result = await within(session.call("cell.execute", connect_code, kernel_name=kernel_name), 60, "a one-shot")
    assert "REFUSED" in text_of(result)
    await call(session, kernel_id, "shutdown")
    session.leave()


@needs_root
@pytest_twisted.ensureDeferred
async def test_the_node_port_is_reachable_without_the_sandbox(node):
    """The network checks above mean something: the port they try is open to anyone outside a kernel."""
    import socket

    with socket.create_connection(("127.0.0.1", node.port), timeout=5):
        pass


@pytest_twisted.ensureDeferred
async def test_an_unknown_kernel_name_is_not_found_and_names_the_offered_ones(node):
    session = await connect(node.url)
    exc = await expect_error(session.call("cell.kernel.start", kernel_name="cobol"), "cell.error.not_found")
    assert "cobol" in exc.error_message()
    for name in ("python3", "bash", "ir"):
        assert name in exc.error_message()
    exc = await expect_error(session.call("cell.execute", "x", kernel_name="cobol"), "cell.error.not_found")
    assert "bash" in exc.error_message()
    await expect_error(session.call("cell.kernel.start", kernel_name=7), "cell.error.invalid_argument")
    session.leave()


@pytest.mark.parametrize("kernel_name", ["bash", "ir"])
@pytest_twisted.ensureDeferred
async def test_a_warm_start_takes_the_kernel_waiting_in_the_pool(node, kernel_name):
    """Not timing: the kernel handed out is a process that was already running before the start was asked."""
    language = LANGUAGES[kernel_name]
    session = await connect(node.url)
    await language_pool_ready(session, kernel_name)
    spawner = spawner_processes(node.proc.pid)[0]
    before = {p.pid for p in processes_under(spawner.pid, language["marker"])}
    kernel_id = await start(session, kernel_name)
    pid = int(text_of(await call(session, kernel_id, "execute", language["pid"])).strip())
    assert pid in before, "the kernel came from the pool: its process was running before the start"
    if os.geteuid() == 0:  # pool kernels wait at pool_nice (root only) and get niceness 0 when handed out
        assert text_of(await call(session, kernel_id, "execute", language["nice"])).strip() == "0"
    await call(session, kernel_id, "shutdown")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_an_r_kernel_is_interrupted_and_restarted(node):
    session = await connect(node.url)
    kernel_id = await start(session, "ir")
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    await call(session, kernel_id, "execute", "x <- 5")
    running = call(session, kernel_id, "execute", 'cat("sleeping\\n"); Sys.sleep(60)', deadline=20)
    # Once the code prints, it runs inside IRkernel's handler: an interrupt before that (right after execute_input)
    # ends the R process, which is reported as the kernel's death (IRkernel runs R non-interactively).
    await events.wait_for(
        lambda e: e["header"]["msg_type"] == "stream" and "sleeping" in e["content"]["text"],
        what="the sleep to start",
    )
    await call(session, kernel_id, "interrupt")
    result = await running  # within its deadline of 20 s: the interrupt stopped the sleep
    assert result["status"] == "aborted", result
    assert text_of(await call(session, kernel_id, "execute", "cat(x)")) == "5", "the interrupt kept the state"
    assert (await call(session, kernel_id, "restart", deadline=60)) == {"status": "ok"}
    assert text_of(await call(session, kernel_id, "execute", "cat(exists('x'))")) == "FALSE", "a fresh process"
    await call(session, kernel_id, "shutdown")
    session.leave()


@pytest_twisted.ensureDeferred
async def test_a_bash_kernel_that_dies_is_reported_like_a_python_kernel(node):
    session = await connect(node.url)
    kernel_id = await start(session, "bash")
    events = Recorder()
    await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
    await expect_error(call(session, kernel_id, "execute", "kill -9 $PPID; sleep 30"), "cell.error.kernel_died")
    dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", what="the dead event")
    assert "SIGKILL" in dead["content"]["reason"]
    await expect_error(call(session, kernel_id, "execute", "echo again"), "cell.error.not_found")
    session.leave()


@pytest.fixture(scope="module")
def r_only_node(tmp_path_factory):
    """A node offering R alone (``languages``), with tight limits."""

    def edit(config):
        spawner_settings(config, pool_size=1, languages=["ir"], memory_limit_mb=300, limit_cpu_s=4)

    node = Node(tmp_path_factory.mktemp("r_only"), edit=edit).start()
    yield node
    node.stop()


@needs_root
@pytest_twisted.ensureDeferred
async def test_languages_setting_and_limits_reported_as_for_python_kernels(r_only_node):
    session = await connect(r_only_node.url)
    assert set((await session.call("cell.kernelspecs"))["kernelspecs"]) == {"python3", "ir"}
    await expect_error(session.call("cell.kernel.start", kernel_name="bash"), "cell.error.not_found")
    sandbox = (await session.call("cell.status"))["spawners"][0]["sandbox"]
    for code, cause, needed in (
        ("x <- numeric(1e8); x[] <- 1; length(x)", "memory limit of 300 MB", sandbox["memory_cgroup"]),
        ("repeat {}", "CPU time limit of 4 s", True),
    ):
        if not needed:
            continue
        kernel_id = await start(session, "ir")
        events = Recorder()
        await session.subscribe(events, "cell.kernel.{}.iopub".format(kernel_id))
        exc = await expect_error(call(session, kernel_id, "execute", code, deadline=60), "cell.error.kernel_died")
        assert cause in exc.error_message(), exc.error_message()
        dead = await events.wait_for(lambda e: e["content"].get("execution_state") == "dead", what="the dead event")
        assert cause in dead["content"]["reason"]
    session.leave()


# -- passagemath's languages (the Sage environment, `make sage`) ------------------------------------------------


def _gp_shell(command):
    """GP code whose output is what the shell printed for C{command} (``externstr`` reads its lines)."""
    return '{{my(v = externstr("{}")); for(i = 1, #v, print(v[i]))}}'.format(command)


def _gap_shell(command):
    """GAP code that prints what ``sh -c command`` wrote (GAP's ``Process`` into a string stream)."""
    return (
        's := "";; out := OutputTextString(s, true);; '
        'Process(DirectoryCurrent(), Filename(DirectoriesSystemPrograms(), "sh"), InputTextNone(), out, '
        '["-c", "{}"]);; CloseStream(out);; Print(s);'
    ).format(command)


def _singular_shell(command):
    """Singular code that shows what ``sh -c command`` wrote (Singular's ``system("sh", ...)`` prints to the
    process's own stdout, not the cell's: the output goes through a file of the kernel's directory)."""
    return 'int rc = system("sh", "( {} ) > shell-out.txt 2>&1"); read("shell-out.txt");'.format(command)


#: passagemath's kernels: their kernelspec's language and display name, a computation and what its output holds,
#: and code that runs a shell command (each language can shell out: the stranger's way to the rest of the system)
SAGE_LANGUAGES = {
    "pari_jupyter": {
        "language": "gp",
        "display_name": "PARI/GP",
        "compute": ("factor(2^64+1)", ["274177", "67280421310721"]),
        "shell": _gp_shell,
    },
    "gap-4": {
        "language": "gap",
        "display_name": "GAP 4",
        "compute": ("Size(SymmetricGroup(5));", ["120"]),
        "shell": _gap_shell,
    },
    "singular": {
        "language": "singular",
        "display_name": "Singular",
        "compute": ("ring r=0,(x,y),dp; poly f=x^2-y^2; factorize(f);", ["x-y", "x+y"]),
        "shell": _singular_shell,
    },
}


@pytest.fixture(scope="module")
def sage_node(tmp_path_factory):
    """A node with the Sage environment (as ``make run``), and a canary secret in its environment and in its
    spawner's (as tests/test_strangers.py's): no kernel may see them."""
    canary, spawner_canary = ("canary-" + os.urandom(12).hex() for _ in range(2))

    def edit(config):
        with_sage(config)
        for worker in config["workers"]:
            if worker["type"] == "guest":
                worker["options"]["env"]["vars"][CANARY_ENV] = spawner_canary

    node = Node(tmp_path_factory.mktemp("sage_languages"), edit=edit, env={CANARY_ENV: canary})
    node.canaries = [canary, spawner_canary, node.service_secret]
    node.start()
    yield node
    node.stop()


@pytest_twisted.ensureDeferred
async def test_kernelspecs_lists_gp_gap_and_singular_with_the_sage_environment(sage_node):
    session = await connect(sage_node.url)
    specs = (await session.call("cell.kernelspecs"))["kernelspecs"]
    for name, language in SAGE_LANGUAGES.items():
        assert name in specs, "{} is offered with the Sage environment: {}".format(name, sorted(specs))
        assert specs[name]["spec"]["language"] == language["language"]
        assert specs[name]["spec"]["display_name"] == language["display_name"]
        assert specs[name]["spec"]["argv"] == [] and specs[name]["spec"]["env"] == {}
    assert "python3" in specs and "bash" in specs, "and the languages of every node"
    if "sagemath" in specs:
        assert specs["sagemath"]["spec"]["language"] == "sage" and specs["sagemath"]["spec"]["argv"] == []
    session.leave()


@pytest.mark.parametrize("kernel_name", sorted(SAGE_LANGUAGES))
@pytest_twisted.ensureDeferred
async def test_passagemaths_languages_compute_in_a_kernel_and_a_one_shot(sage_node, kernel_name):
    code, shown = SAGE_LANGUAGES[kernel_name]["compute"]
    session = await connect(sage_node.url)
    kernel_id = await start(session, kernel_name)
    result = await call(session, kernel_id, "execute", code, deadline=60)
    assert result["status"] == "ok", result
    assert all(part in text_of(result) for part in shown), text_of(result)
    await call(session, kernel_id, "shutdown")
    result = await within(session.call("cell.execute", code, kernel_name=kernel_name), 90, "a one-shot")
    assert result["status"] == "ok", result
    assert all(part in text_of(result) for part in shown), text_of(result)
    session.leave()


@needs_root
@pytest.mark.parametrize("kernel_name", sorted(SAGE_LANGUAGES))
@pytest_twisted.ensureDeferred
async def test_a_stranger_shelling_out_of_passagemaths_languages_stays_in_the_sandbox(sage_node, kernel_name):
    """From inside GP, GAP or Singular, a shell: its own uid, no network, none of the node's secrets in its
    environment or its kernel's, and a daemon it leaves ends with the kernel."""
    shell = SAGE_LANGUAGES[kernel_name]["shell"]
    session = await connect(sage_node.url)
    kernel_id = await start(session, kernel_name)

    async def run(command):
        result = await call(session, kernel_id, "execute", shell(command), deadline=60)
        assert result["status"] == "ok", result
        return text_of(result)

    uid = int((await run("id -u")).split()[0])
    assert uid >= SpawnerConfig().sandbox_uid_base and uid != os.geteuid(), "its own uid, not root nor the spawner's"
    connect_to = "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{}' 2>/dev/null && echo CONNECTED || echo REFUSED"
    assert "REFUSED" in await run(connect_to.format(sage_node.port)), "no route to the node"
    environment = await run("cat /proc/self/environ /proc/$PPID/environ | tr -c '[:print:]' ' '")
    assert "PATH=" in environment, "the environments were read: " + environment
    assert not [c for c in sage_node.canaries if c in environment], "a secret of the node in the kernel's environment"
    assert "CELL_" not in environment and "CROSSBAR" not in environment, environment
    assert ".sage-venv" in environment, "the Sage environment's programs on its PATH: " + environment
    marker = "{}-daemon-{}".format(kernel_name, os.urandom(6).hex())
    await run("setsid bash -c 'exec -a {} sleep 100000' </dev/null >/dev/null 2>&1 & echo started".format(marker))

    async def started():
        return bool(processes_named(marker))

    # (the shell returns before its background job has exec'd: under load that took a moment)
    await until(started, 30, "the daemon starting (else the test proves nothing)")
    # The same in a one-shot: its kernel is sandboxed the same way.
    result = await within(session.call("cell.execute", shell("id -u"), kernel_name=kernel_name), 90, "a one-shot")
    assert int(text_of(result).split()[0]) >= SpawnerConfig().sandbox_uid_base, text_of(result)
    result = await within(
        session.call("cell.execute", shell(connect_to.format(sage_node.port)), kernel_name=kernel_name),
        90,
        "a one-shot",
    )
    assert "REFUSED" in text_of(result), text_of(result)
    await call(session, kernel_id, "shutdown")
    await gone(marker, 10, "the {} kernel's daemon ending with the kernel".format(kernel_name))
    session.leave()


# -- the parts, without a node -----------------------------------------------------------------------------------


def _spec(directory, name, language, argv=("prog", "{connection_file}"), **extra):
    os.makedirs(os.path.join(directory, name))
    with open(os.path.join(directory, name, "kernel.json"), "w") as f:
        json.dump(dict({"argv": list(argv), "display_name": name.upper(), "language": language}, **extra), f)


@pytest.mark.unit
def test_kernelspecs_are_found_in_order_and_python_ones_left_out(tmp_path):
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    _spec(first, "bash", "bash", env={"PS1": "$"})
    _spec(second, "bash", "bash", argv=("other",))
    _spec(second, "ir", "R", interrupt_mode="message")
    _spec(second, "python3", "python")
    _spec(second, "pypy", "Python")
    _spec(second, "broken", "x")
    with open(os.path.join(second, "broken", "kernel.json"), "w") as f:
        f.write("{not json")
    found = Kernelspecs([first, str(tmp_path / "missing"), second])
    assert sorted(found.specs) == ["bash", "ir"]
    assert found.specs["bash"].argv == ["prog", "{connection_file}"], "the first directory wins"
    assert any("broken" in p for p in found.problems)
    models = found.models()
    assert sorted(models) == ["bash", "ir", "python3"]
    assert models["ir"]["spec"] == {
        "display_name": "IR",
        "language": "R",
        "argv": [],
        "interrupt_mode": "message",
        "env": {},
        "metadata": {},
    }
    assert models["bash"]["spec"]["env"] == {}, "a worker's environment is not told"
    assert found.names() == "python3, bash, ir"
    chosen = Kernelspecs([first, second], wanted=("ir", "julia"))
    assert sorted(chosen.specs) == ["ir"] and chosen.missing == ["julia"]
    assert Kernelspecs([first, second], wanted=()).specs == {}, "an empty list offers no other language"


@pytest.mark.unit
def test_languages_setting_is_null_or_a_list_of_names():
    assert SpawnerConfig().languages is None and SpawnerConfig().language_pool_size == 1
    assert from_mapping(SpawnerConfig, {"languages": ["bash"]}).languages == ("bash",)
    assert from_mapping(SpawnerConfig, {"languages": []}).languages == ()
    with pytest.raises(ConfigError):
        from_mapping(SpawnerConfig, {"languages": [3]})


@pytest.mark.unit
def test_placement_puts_a_language_on_a_spawner_that_offers_it_and_refuses_unknown_names():
    r_model = {"name": "ir", "spec": {"language": "R"}, "resources": {}}
    placement = Placement(4)
    placement.add_spawner("plain", 1, capacity=10)
    placement.add_spawner("with_r", 2, capacity=2, kernelspecs={PYTHON: {}, "ir": r_model})
    assert placement.reserve("a", kernel_name="ir").spawner_id == "with_r"
    assert placement.reserve("a").spawner_id == "plain", "python3 goes to the most free capacity"
    with pytest.raises(errors.NotFound) as refused:
        placement.reserve("a", kernel_name="julia")
    assert "python3, ir" in refused.value.message
    placement.reserve("b", kernel_name="ir")
    with pytest.raises(errors.Capacity):
        placement.reserve("c", kernel_name="ir")  # offered, but its only spawner is full
    listing = placement.kernelspecs()
    assert listing["default"] == PYTHON and sorted(listing["kernelspecs"]) == ["ir", "python3"]
    assert merged([])["kernelspecs"][PYTHON]["spec"]["language"] == "python", "python3 is always listed"


class _Config:
    heartbeat_interval_s = 2.0
    heartbeat_timeout_s = 10.0
    limit_processes = 0
    disk_limit_mb = 0
    idle_timeout_s = 900.0
    max_lifespan_s = 7200.0


@pytest.mark.unit
def test_a_kernel_silent_while_busy_lives_when_it_says_so_and_dies_when_silent_while_idle():
    for while_busy in (True, False):
        clock, died, busy = Clock(), [], [True]
        dog = Watchdog(
            clock, _Config(), died.append, busy=lambda: busy[0], ping=lambda: None, heartbeat_while_busy=while_busy
        )
        dog.watch_heartbeat()
        clock.advance(30)  # 30 s of running code without a pong
        assert bool(died) == while_busy, "an ipykernel that stops answering while busy is dead; IRkernel is not"
        if not while_busy:
            busy[0] = False
            clock.advance(14)
            assert died and died[0].cause == "heartbeat", "silence while idle still counts"


def _launched_kernel(interrupt_mode):
    """A real L{Kernel} of another language on a fake clock, with fake channels and a fake process."""
    import tempfile
    import types

    from components.worker.kernel import Kernel, KernelHost
    from tests.fakes import FakeChannels

    clock, channels, signals = Clock(), [], []
    root = tempfile.mkdtemp()
    specs = types.SimpleNamespace(specs={"fake": types.SimpleNamespace(interrupt_mode=interrupt_mode)}, manager=None)
    host = KernelHost(
        clock,
        SpawnerConfig(),
        None,
        None,
        root,
        root,
        channels_factory=lambda *a, **kw: channels.append(FakeChannels(*a, **kw)) or channels[-1],
        run_blocking=lambda f, *args: defer.maybeDeferred(f, *args),
        kernelspecs=specs,
    )
    kernel = Kernel(host, on_iopub=lambda k, m: None, on_dead=lambda k, r: None, kernel_name="fake")
    kernel.process.fork = lambda niced: defer.succeed((4242, {}))
    kernel.process.signal = signals.append
    return kernel, clock, channels, signals


def _probes(channels):
    return [r[3] for r in channels.requests if r[1] == "kernel_info_request"]


@pytest.mark.unit
def test_a_launched_kernel_is_probed_once_per_answer_and_ready_without_a_warm_up():
    from components.worker.kernel import LAUNCHED_PROBE_INTERVAL_S, PROBE_INTERVAL_S

    kernel, clock, channels, _ = _launched_kernel("signal")
    ready = kernel.start()
    (fake,) = channels
    first = _probes(fake)
    clock.advance(PROBE_INTERVAL_S * 5)
    assert _probes(fake) == first, "no probe every 50 ms: R would answer them all before the first execute"
    fake.reply(first[0], "kernel_info_reply", {})  # shell answered, iopub did not show it (the slow joiner)
    clock.advance(PROBE_INTERVAL_S)
    assert len(_probes(fake)) == 2, "asked again soon after its answer"
    clock.advance(LAUNCHED_PROBE_INTERVAL_S)
    assert len(_probes(fake)) == 3, "and again after a while without one"
    fake.iopub(first[0], "status", {"execution_state": "busy"})  # any probe's status shows iopub flows
    assert successResultOf(ready) is kernel and kernel.state == "ready"
    assert not [r for r in fake.requests if r[1] == "execute_request"], "no warm-up: it would count in its history"


@pytest.mark.unit
def test_a_kernel_whose_spec_says_message_is_interrupted_on_its_control_channel():
    for mode, channel in (("message", "control"), ("signal", None)):
        kernel, clock, channels, signals = _launched_kernel(mode)
        ready = kernel.start()
        channels[0].iopub(_probes(channels[0])[0], "status", {"execution_state": "idle"})
        successResultOf(ready)
        kernel.assign(owner=1)
        kernel.execute("Sys.sleep(10)")
        kernel.interrupt()
        sent = [r[0] for r in channels[0].requests if r[1] == "interrupt_request"]
        assert sent == ([channel] if channel else []) and bool(signals) == (mode == "signal"), (mode, sent, signals)


def successResultOf(d):
    results = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]
