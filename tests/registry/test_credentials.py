"""Credentials are found where docker keeps them, and never shown."""

import base64
import json
import os
import stat
import sys

import pytest

from matrix.registry import CredentialsError, find_credentials
from matrix.registry.credentials import DOCKER_HUB_KEY


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    """Write a config.json and return the environment that points at it; helpers
    written to the same folder are on PATH."""
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    def write(document: dict) -> dict[str, str]:
        (tmp_path / "config.json").write_text(json.dumps(document))
        return {"DOCKER_CONFIG": str(tmp_path)}

    return write


def _helper(directory, name: str, script: str) -> None:
    path = directory / f"docker-credential-{name}"
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_auths_entry_base64(docker_config):
    env = docker_config({"auths": {"ghcr.io": {"auth": _auth("bob", "pa:ss")}}})
    credentials = find_credentials("ghcr.io", env)
    assert (credentials.username, credentials.password) == ("bob", "pa:ss")
    assert find_credentials("quay.io", env) is None


def test_docker_hub_uses_the_index_key_and_legacy_urls_match(docker_config):
    env = docker_config(
        {
            "auths": {
                DOCKER_HUB_KEY: {"username": "hub", "password": "h"},
                "https://ghcr.io/v1/": {"auth": _auth("old", "o")},
            }
        }
    )
    assert find_credentials("docker.io", env).username == "hub"
    assert find_credentials("registry-1.docker.io", env).username == "hub"
    assert find_credentials("ghcr.io", env).username == "old"


def test_cred_helpers_win_over_creds_store_and_auths(docker_config, tmp_path):
    _helper(
        tmp_path,
        "special",
        "import json, sys\n"
        "server = sys.stdin.read()\n"
        "print(json.dumps({'ServerURL': server, 'Username': 'from-helper', 'Secret': 's3'}))\n",
    )
    _helper(
        tmp_path,
        "store",
        "import sys\nprint('credentials not found in native keychain')\nsys.exit(1)\n",
    )
    env = docker_config(
        {
            "credHelpers": {"ghcr.io": "special"},
            "credsStore": "store",
            "auths": {"ghcr.io": {"auth": _auth("ignored", "x")}},
        }
    )
    credentials = find_credentials("ghcr.io", env)
    assert (credentials.username, credentials.password) == ("from-helper", "s3")
    # the store has nothing for quay.io: anonymous, not an error
    assert find_credentials("quay.io", env) is None


def test_helper_identity_token(docker_config, tmp_path):
    _helper(
        tmp_path,
        "oauth",
        "import json\nprint(json.dumps({'Username': '<token>', 'Secret': 'refresh-me'}))\n",
    )
    credentials = find_credentials("docker.io", docker_config({"credsStore": "oauth"}))
    assert credentials.identity_token == "refresh-me"
    assert not credentials.username


def test_failing_helper_is_an_error_that_hides_its_output(docker_config, tmp_path):
    _helper(tmp_path, "broken", "import sys\nprint('secret-in-output')\nsys.exit(3)\n")
    env = docker_config({"credsStore": "broken"})
    with pytest.raises(CredentialsError) as caught:
        find_credentials("ghcr.io", env)
    assert "docker-credential-broken" in str(caught.value)
    assert "secret-in-output" not in str(caught.value)


def test_missing_helper_is_named(docker_config):
    with pytest.raises(CredentialsError, match=r"docker-credential-absent.*not installed"):
        find_credentials("ghcr.io", docker_config({"credsStore": "absent"}))


def test_environment_variables_for_ci_come_first(docker_config):
    env = docker_config({"auths": {"ghcr.io": {"auth": _auth("file", "f")}}})
    env |= {"MATRIX_REGISTRY_USERNAME": "ci", "MATRIX_REGISTRY_PASSWORD": "ci-secret"}
    assert find_credentials("ghcr.io", env).username == "ci"
    env["MATRIX_REGISTRY_HOSTS"] = "docker.io, quay.io"
    assert find_credentials("ghcr.io", env).username == "file"
    assert find_credentials("registry-1.docker.io", env).username == "ci"


def test_half_set_environment_variables_are_an_error():
    with pytest.raises(CredentialsError, match="MATRIX_REGISTRY_PASSWORD"):
        find_credentials("ghcr.io", {"MATRIX_REGISTRY_USERNAME": "ci"})


def test_docker_auth_config_variable(tmp_path):
    env = {
        "DOCKER_CONFIG": str(tmp_path),
        "DOCKER_AUTH_CONFIG": json.dumps({"auths": {"ghcr.io": {"auth": _auth("u", "p")}}}),
    }
    assert find_credentials("ghcr.io", env).password == "p"


def test_unreadable_config_names_the_file_and_not_its_content(tmp_path):
    (tmp_path / "config.json").write_text('{"auths": {"x": {"auth": "hunter2"')
    with pytest.raises(CredentialsError) as caught:
        find_credentials("x", {"DOCKER_CONFIG": str(tmp_path)})
    assert str(tmp_path / "config.json") in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_secrets_stay_out_of_reprs(docker_config):
    env = docker_config({"auths": {"ghcr.io": {"auth": _auth("bob", "hunter2")}}})
    credentials = find_credentials("ghcr.io", env)
    assert "hunter2" not in repr(credentials)
    assert "bob" in repr(credentials)
