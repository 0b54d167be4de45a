"""`teaim serve` keeps development identity on this machine, and refuses weak settings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from interfaces.cli import main
from interfaces.serve_guard import UnsafeBindError, check_dev_auth_bind, is_loopback
from interfaces.settings import Settings

LOOPBACK = ["127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "::1", "[::1]"]
REACHABLE = ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.com", "my-host", ""]  # noqa: S104


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_addresses_are_recognised(host: str) -> None:
    assert is_loopback(host)
    check_dev_auth_bind(Settings(_env_file=None, dev_auth=True), host)


@pytest.mark.parametrize("host", REACHABLE)
def test_dev_auth_is_refused_on_a_reachable_address(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(UnsafeBindError, match="DEV_AUTH is on"):
        check_dev_auth_bind(Settings(_env_file=None, dev_auth=True), host)
    # Forced explicitly (flag or setting), or without DEV_AUTH, it is allowed.
    check_dev_auth_bind(Settings(_env_file=None, dev_auth=True), host, allow_remote=True)
    forced = Settings(_env_file=None, dev_auth=True, dev_auth_allow_remote=True)
    check_dev_auth_bind(forced, host)
    check_dev_auth_bind(Settings(_env_file=None, dev_auth=False), host)


def _serve(env: dict[str, str], *args: str) -> tuple[int, str]:
    # DATABASE_URL points nowhere: a refusal must come before any database is touched.
    env = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", **env}
    result = CliRunner().invoke(main, ["serve", *args], env=env)
    return result.exit_code, result.output


def test_serve_refuses_dev_auth_on_a_public_address_before_starting() -> None:
    code, output = _serve({"DEV_AUTH": "1"}, "--host", "0.0.0.0")  # noqa: S104
    assert code != 0
    assert "DEV_AUTH is on" in output
    assert "--allow-dev-auth-remote" in output
    code, output = _serve({"DEV_AUTH": "1", "HOST": "192.0.2.1"})
    assert code != 0
    assert "DEV_AUTH is on" in output


def test_serve_refuses_a_short_jwt_secret_without_printing_it() -> None:
    code, output = _serve({"JWT_SECRET": "short-secret-123"})
    assert code != 0
    assert "JWT_SECRET" in output
    assert "at least 32 bytes" in output
    assert "short-secret-123" not in output
