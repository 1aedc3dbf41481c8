"""L{components.common.config}: unknown and bad values refused, the rest read."""

import pytest

from components.common.config import ConfigError, RouterConfig, SpawnerConfig, from_mapping

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
