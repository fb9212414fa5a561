"""devkit/configuration.py: which configuration file the scripts use, and the one check of it.

The file is found in the SDK's order (--config, else FIVETRAN_CONFIGURATION, else the
project's configuration.json); its contents are judged by the connector's own
validate_configuration, so both scripts refuse exactly what a sync would refuse.
"""

import json
from pathlib import Path

import pytest

from devkit import REPO_ROOT
from devkit.configuration import (
    FROM_DEFAULT,
    FROM_ENV,
    FROM_FLAG,
    ConfigurationFile,
    check_configuration,
    read_configuration,
    resolve_configuration,
)
from devkit.console import Failure


def test_configuration_flag_comes_first_relative_to_the_current_folder(tmp_path):
    found = resolve_configuration("flag.json", {"FIVETRAN_CONFIGURATION": "env.json"}, tmp_path)
    assert found == ConfigurationFile(tmp_path / "flag.json", FROM_FLAG)


def test_configuration_variable_comes_next_relative_to_the_project_folder(tmp_path):
    found = resolve_configuration(None, {"FIVETRAN_CONFIGURATION": "env.json"}, tmp_path)
    assert found == ConfigurationFile(REPO_ROOT / "env.json", FROM_ENV)


def test_configuration_defaults_to_the_projects_configuration_json(tmp_path):
    found = resolve_configuration(None, {}, tmp_path)
    assert found == ConfigurationFile(REPO_ROOT / "configuration.json", FROM_DEFAULT)
    assert found.describe() == "the default, configuration.json"


def test_configuration_flag_expands_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_configuration("~/lab.json", {}, REPO_ROOT).path == tmp_path / "lab.json"


def test_unreadable_json_is_refused_without_quoting_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"api_key": "secret-value-123"')
    with pytest.raises(Failure) as refused:
        read_configuration(path)
    assert "is not readable JSON" in refused.value.message
    assert "secret-value-123" not in refused.value.message


def test_missing_file_is_refused_with_the_reason(tmp_path):
    with pytest.raises(Failure) as refused:
        read_configuration(tmp_path / "missing.json")
    assert "No such file or directory" in refused.value.message


def checked(configuration, hint: str = "") -> str:
    """The message check_configuration refuses `configuration` with."""
    with pytest.raises(Failure) as refused:
        check_configuration(configuration, Path("lab.json"), hint)
    return refused.value.message


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        (["api_key"], "must be a JSON object"),
        ({"api_key": "k", "page_size": 100}, "'page_size' must be a string"),
        ({"api_key": "YOUR_HED_API_KEY"}, "'api_key' still holds the placeholder"),
        ({"api_key": "k", "base_url": "http://example.edu"}, "'base_url' must use https"),
        ({"api_key": "k", "page_size": "500"}, "'page_size'"),
    ],
)
def test_check_refuses_what_the_connector_refuses(configuration, message):
    refused = checked(configuration)
    assert refused.startswith("lab.json: ")
    assert message in refused


def test_check_ends_with_the_callers_hint():
    assert checked({"api_key": ""}, "\n  - try --local").endswith("\n  - try --local")


def test_check_never_quotes_the_api_key():
    assert "bad key\n9876" not in checked({"api_key": "bad key\n9876"})


def test_check_returns_the_connectors_settings():
    settings = check_configuration({"api_key": "k", "page_size": "50"}, Path("lab.json"))
    assert settings.page_size == 50


def test_the_repositorys_configuration_json_is_refused_for_its_placeholder_key():
    path = REPO_ROOT / "configuration.json"
    assert "placeholder" in checked(json.loads(path.read_text()))
