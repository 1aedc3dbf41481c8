"""components.router.http_api: its settings (the ``v1`` path's ``extra``) and its OpenAPI description."""

import pytest
from openapi_spec_validator import validate

from components.common.config import ConfigError
from components.router.http_api import ApiConfig, HttpApi
from components.router.http_api_openapi import SPEC
from components.router.http_api_wire import MAX_BODY_BYTES

pytestmark = pytest.mark.unit


def test_settings_default_to_the_faces_and_refuse_typos():
    api = HttpApi({})
    assert api.settings == ApiConfig()
    assert api.settings.anonymous and api.settings.anonymous_origins == ["*"]
    assert api.settings.max_body_bytes == MAX_BODY_BYTES
    with pytest.raises(ConfigError, match="anonymus"):
        HttpApi({"anonymus": False})
    with pytest.raises(ConfigError, match="max_body_bytes"):
        HttpApi({"max_body_bytes": "12M"})
    with pytest.raises(ValueError, match="allowed_origins"):
        HttpApi({"allowed_origins": ["not an origin"]})


def test_the_description_is_valid_openapi_31_and_names_the_body_limit():
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")
    assert str(MAX_BODY_BYTES) in SPEC["paths"]["/execute"]["post"]["requestBody"]["description"]
