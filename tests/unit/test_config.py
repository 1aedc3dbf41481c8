"""L{components.common.config}: unknown and bad values refused, the rest read."""

import argparse
import json
import os

import pytest

from components.common.config import (
    ClientConnectionsConfig,
    ConfigError,
    FaceConfig,
    PermalinkConfig,
    RouterConfig,
    SpawnerConfig,
    from_mapping,
)
from components.kernel_spawner import parse_args, read_settings
from tests.node import ROOT

pytestmark = pytest.mark.unit


def test_config_refuses_unknown_and_bad_values():
    with pytest.raises(ConfigError, match="pool_sise"):
        from_mapping(SpawnerConfig, {"pool_sise": 3})
    with pytest.raises(ConfigError):
        from_mapping(SpawnerConfig, {"pool_size": -1})
    assert from_mapping(SpawnerConfig, {"preload": "numpy,sympy"}).preload == ("numpy", "sympy")
    router = from_mapping(
        RouterConfig, {"cbdir": "/x", "roles": {"browser": {"max_kernels_per_session": 2}}}, ignore=("cbdir",)
    )
    assert router.quotas()["browser"].max_kernels_per_session == 2
    assert router.quotas()["service"].max_kernels_per_session == 32
    with pytest.raises(ConfigError, match="max_kernals"):
        from_mapping(RouterConfig, {"roles": {"browser": {"max_kernals": 2}}})


#: each part of the node's config, and where .crossbar/config.json keeps its settings
PARTS = (SpawnerConfig, RouterConfig, ClientConnectionsConfig, FaceConfig, PermalinkConfig)


@pytest.mark.parametrize("part", PARTS)
def test_every_part_refuses_an_unknown_key_naming_it_and_the_known_ones(part):
    with pytest.raises(ConfigError, match=r"unknown {} setting\(s\): colour; known: ".format(part.__name__)):
        from_mapping(part, {"colour": "red"})
    assert from_mapping(part, {}) == part(), "an empty mapping is the defaults"


@pytest.mark.parametrize(
    "part, key, value, kind",
    (
        (SpawnerConfig, "pool_size", "4", "an integer"),
        (SpawnerConfig, "max_kernels", True, "an integer"),
        (SpawnerConfig, "allow_network", 1, "true or false"),
        (SpawnerConfig, "work_root", 5, "a string"),
        (SpawnerConfig, "languages", "bash", None),  # a comma-separated string is a list: no refusal
        (SpawnerConfig, "execute_timeout_s", "300", "a number"),
        (RouterConfig, "trusted_proxies", "10.0.0.1", "a list"),
        (RouterConfig, "services", ["service"], "an object"),
        (ClientConnectionsConfig, "max_unsent_bytes", "32 MiB", None),
        (FaceConfig, "anonymous", "yes", "true or false"),
        (FaceConfig, "max_message_bytes", 1.5, "an integer"),
        (PermalinkConfig, "connect_timeout_s", 2.5, "an integer"),
        (PermalinkConfig, "data_dir", None, "a string"),
    ),
)
def test_a_value_of_the_wrong_type_is_refused_with_a_message_naming_the_key(part, key, value, kind):
    if kind is None and key == "languages":
        assert from_mapping(part, {key: value}).languages == ("bash",)
        return
    with pytest.raises(ConfigError, match=key) as refused:
        from_mapping(part, {key: value})
    if kind is not None:
        assert str(refused.value) == "{} setting {} must be {}, not {!r}".format(part.__name__, key, kind, value)


def test_a_role_quota_of_the_wrong_type_names_the_role_and_the_quota():
    with pytest.raises(ConfigError, match=r"roles\.browser\.max_code_bytes must be an integer, not '64k'"):
        from_mapping(RouterConfig, {"roles": {"browser": {"max_code_bytes": "64k"}}})


def test_the_face_refuses_trusted_proxies_saying_where_it_belongs():
    with pytest.raises(ConfigError, match="session router's extra.trusted_proxies"):
        from_mapping(FaceConfig, {"trusted_proxies": ["10.0.0.1"]})


def test_the_shipped_config_parses_part_by_part():
    """Every part's settings in .crossbar/config.json (the spawner's as real JSON on its stdin) build their part."""
    with open(os.path.join(ROOT, ".crossbar", "config.json")) as f:
        config = json.load(f)
    (spawner,) = [w for w in config["workers"] if w["type"] == "guest"]
    assert spawner["options"]["stdin"]["type"] == "json" and spawner["options"]["stdin"]["close"] is True
    assert "--config-stdin" in spawner["arguments"] and "--config" not in spawner["arguments"]
    assert from_mapping(SpawnerConfig, spawner["options"]["stdin"]["value"]).max_kernels == 32
    components = {c["id"]: c for w in config["workers"] for c in w.get("components", [])}
    paths = next(t for w in config["workers"] for t in w.get("transports", []) if t.get("id") == "web")["paths"]
    parts = (
        (RouterConfig, components["session_router"]["extra"]),
        (PermalinkConfig, components["permalinks"]["extra"]),
        (ClientConnectionsConfig, components["client_connections"]["extra"]),
        (FaceConfig, paths["jupyter"]["extra"]),
    )
    for part, extra in parts:
        assert isinstance(from_mapping(part, extra), part)


def spawner_args(*argv):
    args, _ = parse_args(["--id", "unit", *argv])
    return args


def from_stdin(text):
    """What L{read_settings} makes of C{text} written to a real pipe on its stdin, the pipe then closed."""
    read, write = os.pipe()
    os.write(write, text.encode("utf8"))
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as stdin:
        return read_settings(argparse.Namespace(config_stdin=True, config_file=None, config="{}"), stdin=stdin)


def test_spawner_settings_are_read_from_stdin_as_crossbar_writes_them(tmp_path):
    """Crossbar's guest worker writes options.stdin.value as JSON (UTF-8, not ASCII-escaped) and closes the pipe."""
    value = {"pool_size": 2, "work_root": str(tmp_path / "wörk"), "preload": ["numpy"]}
    assert from_stdin(json.dumps(value, ensure_ascii=False)) == value
    config = from_mapping(SpawnerConfig, value)
    assert config.pool_size == 2 and config.preload == ("numpy",) and config.work_root.endswith("wörk")


@pytest.mark.parametrize("text", ("", '{"pool_size": ', "[1, 2]", "null"))
def test_stdin_that_is_not_a_json_object_is_refused_naming_its_source(text):
    with pytest.raises(ConfigError, match="^--config-stdin: "):
        from_stdin(text)


def test_spawner_settings_from_a_file_or_the_command_line(tmp_path, capsys):
    path = tmp_path / "spawner.json"
    path.write_text('{"max_kernels": 64}')
    assert read_settings(spawner_args("--config-file", str(path))) == {"max_kernels": 64}
    assert read_settings(spawner_args("--config", '{"max_kernels": 8}')) == {"max_kernels": 8}
    assert read_settings(spawner_args()) == {}
    with pytest.raises(SystemExit):
        spawner_args("--config-file", str(tmp_path / "missing.json"))
    assert "error: --config-file: [Errno 2] No such file" in capsys.readouterr().err
    path.write_text('{"max_kernels": "64"}')
    with pytest.raises(SystemExit):
        spawner_args("--config-file", str(path))
    assert "error: SpawnerConfig setting max_kernels must be an integer, not '64'" in capsys.readouterr().err
