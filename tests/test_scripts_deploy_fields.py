"""deploy.sh's field resolution (devkit/deploy_fields.py) agrees with the SDK's own resolver.

deploy.sh prints where each deploy field comes from and prompts only for what nothing else
gives, so its resolution must be the one `fivetran deploy` then performs. These tests put
both through the same flags, environment variables and options files and compare values
and sources, calling the resolver functions of the installed SDK
(fivetran_connector_sdk_cli/resolution.py) for the reference: an SDK upgrade that changes
the rules fails here. No Fivetran API call is involved: only fields that resolve without
one are compared.
"""

import argparse
import os

import pytest
from fivetran_connector_sdk_cli import resolution
from fivetran_connector_sdk_cli.cli_helpers import PromptMode

from devkit import deploy_fields

PROFILES = """
[default]
destination = "PROFILE_DESTINATION"
connection = "profile_connection"
python_version = "3.11"
naming = "source"
proxy_id = "profile_proxy"
proxy_host_config_key = "base_url"
package_id = "profile_package"

[team.staging]
destination = "STAGING_DESTINATION"
"""
SDK_FLAGS = (
    "destination",
    "connection",
    "python_version",
    "hybrid_deployment_agent_id",
    "proxy_id",
    "proxy_host_config_key",
    "naming",
    "package_id",
    "options_file",
)
# flag values, environment variables, whether ./options.toml exists
SCENARIOS = {
    "flags only": (
        {"destination": "FLAG_DEST", "connection": "flag_conn", "python_version": "3.13"},
        {},
        False,
    ),
    "variables only": (
        {},
        {
            "FIVETRAN_DESTINATION_NAME": "ENV_DEST",
            "FIVETRAN_CONNECTION_NAME": "env_conn",
            "FIVETRAN_PYTHON_VERSION": "3.12",
            "FIVETRAN_NAMING": "fivetran",
        },
        False,
    ),
    "profile only": ({}, {}, True),
    "flag beats variable beats profile": (
        {"destination": "FLAG_DEST", "proxy_id": "flag_proxy"},
        {"FIVETRAN_DESTINATION_NAME": "ENV_DEST", "FIVETRAN_CONNECTION_NAME": "env_conn"},
        True,
    ),
    "blank variable falls through to the profile": (
        {},
        {"FIVETRAN_DESTINATION_NAME": "   "},
        True,
    ),
    "nothing at all": ({}, {}, False),
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """An empty HOME and a current folder; no FIVETRAN_* variables from the caller."""
    for name in list(os.environ):
        if name.startswith("FIVETRAN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def sdk_namespace(flags: dict, profile: str | None = None) -> argparse.Namespace:
    values = dict.fromkeys(SDK_FLAGS) | flags
    return argparse.Namespace(**values, profile=profile or "default")


def sdk_resolution(flags: dict, profile_name: str | None = None) -> dict:
    """{field: (value, source)} from the SDK's own resolver, for a new connection."""
    args = sdk_namespace(flags, profile_name)
    profile, label, _data, _path = resolution._select_active_profile(args, "unused-key", {})
    resolved = {}
    for field, flag, env_var in (
        ("destination", "--destination", "FIVETRAN_DESTINATION_NAME"),
        ("connection", "--connection", "FIVETRAN_CONNECTION_NAME"),
    ):
        getter = (
            resolution.get_destination_group
            if field == "destination"
            else resolution.get_connection_name
        )
        value, source, _missing = resolution._resolve_required_field(
            args, field, flag, env_var, getter, profile, label
        )
        resolved[field] = (value, source)
    value, source, _ = resolution._resolve_python_version(
        args, PromptMode.YES, profile, label, treat_as_new=True
    )
    resolved["python_version"] = (value, source)
    proxy, host_key = resolution._resolve_proxy_fields(args, profile, label, None)
    resolved["proxy_id"], resolved["proxy_host_config_key"] = proxy, host_key
    resolved["package_id"] = resolution._resolve_package_id(args, profile, label)
    resolved["naming"] = resolution._resolve_naming(args, profile, label, is_new_connection=True)
    return resolved


def our_resolution(flags: dict, profile_name: str | None = None) -> dict:
    """{field: (value, source)} from devkit/deploy_fields.py, as deploy.sh gets it."""
    found = deploy_fields.find_options_file(flags.get("options_file"))
    profile = deploy_fields.select_profile(found, profile_name)
    as_flags = {f"--{name.replace('_', '-')}": value for name, value in flags.items()}
    fields = deploy_fields.resolve_deploy_fields(as_flags, profile, profile_name or "default")
    return {field: (value, source) for field, value, source in fields}


def assert_same(ours: tuple, sdk: tuple) -> None:
    """Same value and source; our sources may add a note after the SDK's words."""
    assert ours[0] == sdk[0]
    if sdk[1] is None:
        assert ours[0] is None
    else:
        assert ours[1].split(";")[0] == sdk[1]


COMPARED = ("destination", "connection", "python_version", "proxy_id", "proxy_host_config_key")


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("field", [*COMPARED, "package_id", "naming"])
def test_field_resolves_as_the_sdk_resolves_it(workspace, monkeypatch, scenario, field):
    flags, variables, with_profile = SCENARIOS[scenario]
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    if with_profile:
        (workspace / "options.toml").write_text(PROFILES)
    assert_same(our_resolution(flags)[field], sdk_resolution(flags)[field])


def test_named_nested_profile_resolves_as_the_sdk_resolves_it(workspace, tmp_path):
    options = tmp_path / "elsewhere" / "options.toml"
    options.parent.mkdir()
    options.write_text(PROFILES)
    flags = {"options_file": str(options)}
    ours = our_resolution(flags, "team.staging")["destination"]
    assert ours == ("STAGING_DESTINATION", "options file, profile [team.staging]")
    assert_same(ours, sdk_resolution(flags, "team.staging")["destination"])


def test_options_file_lookup_finds_the_current_folder_before_home(workspace, tmp_path):
    home_file = tmp_path / "home" / ".fivetran" / "connector_sdk" / "options.toml"
    home_file.parent.mkdir(parents=True)
    home_file.write_text(PROFILES)
    (workspace / "options.toml").write_text('[default]\ndestination = "HERE"\n')
    found = deploy_fields.find_options_file(None)
    assert found == deploy_fields.OptionsFile(str(workspace / "options.toml"), "./options.toml")


def test_options_file_lookup_falls_back_to_home(workspace, tmp_path):
    home_file = tmp_path / "home" / ".fivetran" / "connector_sdk" / "options.toml"
    home_file.parent.mkdir(parents=True)
    home_file.write_text(PROFILES)
    assert deploy_fields.find_options_file(None) == deploy_fields.OptionsFile(
        str(home_file), "home"
    )


def test_options_file_variable_wins_over_the_current_folder(workspace, monkeypatch, tmp_path):
    chosen = tmp_path / "chosen.toml"
    chosen.write_text(PROFILES)
    (workspace / "options.toml").write_text(PROFILES)
    monkeypatch.setenv("FIVETRAN_OPTIONS_FILE", str(chosen))
    assert deploy_fields.find_options_file(None) == deploy_fields.OptionsFile(
        str(chosen), "FIVETRAN_OPTIONS_FILE"
    )


def test_missing_options_file_named_by_flag_exits_as_the_sdk_does(workspace):
    with pytest.raises(SystemExit) as stopped:
        deploy_fields.find_options_file("missing.toml")
    assert stopped.value.code == 1
