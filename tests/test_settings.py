"""Settings: seed variables, precedence CLI > environment > .env > mockpanel.toml > defaults, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mockpanel.servers import SERVERS
from mockpanel.settings import SettingsError, load_settings


def load(tmp_path, *, cli=None, environ=None, dotenv=None, toml=None, only=None):
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    if toml is not None:
        (tmp_path / "mockpanel.toml").write_text(toml)
    return load_settings(SERVERS, cli=cli or {}, environ=environ or {}, cwd=tmp_path, only=only)


def test_defaults_come_from_the_seed(tmp_path):
    s = load(tmp_path)
    auth = s.servers["auth"]
    assert (auth.host, auth.port, auth.enabled) == ("127.0.0.1", 8000, True)
    assert auth["jwt_secret"] == "dev-secret-key-change-in-production"
    assert auth["jwt_algorithm"] == "HS256" and auth["jwt_expiry_hours"] == 24 and auth["jwt_refresh_expiry_days"] == 30
    assert auth["default_password"] == "password123"
    assert auth["simulate_delays"] is False and auth["error_rate"] == 0.0
    assert any("development default" in n for n in s.notices)


def test_seed_variables_work_as_named(tmp_path):
    env = {
        "JWT_SECRET": "x" * 40, "JWT_ALGORITHM": "HS384", "JWT_EXPIRY_HOURS": "168", "JWT_REFRESH_EXPIRY_DAYS": "90",
        "HOST": "0.0.0.0", "SIMULATE_DELAYS": "true", "MIN_DELAY_MS": "10", "MAX_DELAY_MS": "20",
        "ERROR_RATE": "0.1", "DEFAULT_PASSWORD": "hunter22",
    }
    s = load(tmp_path, environ=env)
    auth = s.servers["auth"]
    assert auth["jwt_secret"] == "x" * 40 and auth["jwt_algorithm"] == "HS384"
    assert auth["jwt_expiry_hours"] == 168 and auth["jwt_refresh_expiry_days"] == 90
    assert auth.host == "0.0.0.0"
    assert auth["simulate_delays"] is True and (auth["min_delay_ms"], auth["max_delay_ms"]) == (10, 20)
    assert auth["error_rate"] == 0.1 and auth["default_password"] == "hunter22"
    assert any("reachable from other machines" in n for n in s.notices)
    assert not any(n.startswith("auth:") and "development default" in n for n in s.notices)


def test_precedence_cli_env_dotenv_toml_default(tmp_path):
    toml = "[auth]\nport = 8101\njwt_expiry_hours = 2\nmax_delay_ms = 900\nerror_rate = 0.4\n"
    dotenv = "MOCKPANEL_AUTH_PORT=8102\nJWT_EXPIRY_HOURS=3\nERROR_RATE=0.3\n"
    env = {"MOCKPANEL_AUTH_PORT": "8103", "ERROR_RATE": "0.2"}
    s = load(tmp_path, toml=toml, dotenv=dotenv, environ=env, cli={("auth", "port"): "8104"})
    auth = s.servers["auth"]
    assert auth.port == 8104  # CLI beats all
    assert auth["error_rate"] == 0.2  # environment beats .env and toml
    assert auth["jwt_expiry_hours"] == 3  # .env beats toml
    assert auth["max_delay_ms"] == 900  # toml beats default
    assert auth["min_delay_ms"] == 50  # default
    assert auth.sources["port"] == "--auth-port"
    assert auth.sources["error_rate"] == "ERROR_RATE in environment"


def test_prefixed_variable_beats_the_seed_name(tmp_path):
    s = load(tmp_path, environ={"JWT_SECRET": "a" * 32, "MOCKPANEL_AUTH_JWT_SECRET": "b" * 32})
    assert s.servers["auth"]["jwt_secret"] == "b" * 32


def test_seed_port_variable_applies_when_one_server_runs(tmp_path):
    assert load(tmp_path, environ={"PORT": "8002"}, only=["auth"]).servers["auth"].port == 8002
    assert load(tmp_path, environ={"PORT": "8002"}).servers["auth"].port == 8000


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"cli": {("auth", "port"): "abc"}}, "invalid setting auth.port = 'abc' (from --auth-port): expected a port number from 0 to 65535"),
        ({"environ": {"ERROR_RATE": "7"}}, "invalid setting auth.error_rate = '7' (from ERROR_RATE in environment): expected a number from 0 to 1"),
        ({"environ": {"SIMULATE_DELAYS": "maybe"}}, "invalid setting auth.simulate_delays = 'maybe'"),
        ({"toml": "[auth]\nport = 70000\n"}, "invalid setting auth.port = 70000 (from [auth] port in mockpanel.toml)"),
        ({"toml": "[nope]\nport = 1\n"}, "unknown section [nope]"),
        ({"toml": "[auth\n"}, "invalid config file"),
        ({"environ": {"MIN_DELAY_MS": "300"}}, "min_delay_ms = 300: larger than auth.max_delay_ms = 200"),
        ({"only": ["auth", "ftp"]}, "unknown server(s) ftp"),
    ],
)
def test_invalid_values_are_one_line_errors_naming_the_setting(tmp_path, kwargs, message):
    with pytest.raises(SettingsError) as info:
        load(tmp_path, **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "args,env,message",
    [
        (["--auth-port", "abc"], {}, "mockpanel: invalid setting auth.port = 'abc' (from --auth-port)"),
        ([], {"ERROR_RATE": "7"}, "mockpanel: invalid setting auth.error_rate = '7' (from ERROR_RATE in environment)"),
        (["--auth-jwt-algorithm", "RS256"], {}, "mockpanel: invalid setting auth.jwt_algorithm = 'RS256'"),
    ],
)
def test_cli_stops_with_one_line_on_bad_settings(tmp_path, args, env, message):
    r = subprocess.run([sys.executable, "-m", "mockpanel", "serve", *args], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env}, cwd=tmp_path, timeout=60)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith(message)
