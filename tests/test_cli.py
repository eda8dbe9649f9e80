"""The command line a newcomer reads: a short top-level help, each command its own, every setting in `mockpanel
settings`, the forms scripts already use still taken; and `mockpanel health`, a container's health check."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mockpanel.cli import COMMANDS, build_parser, normalize_argv
from mockpanel.testing import RunningHub, settings_for


def mockpanel(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mockpanel", *args], capture_output=True, text=True, timeout=60, env=env)


def test_the_top_level_help_is_short_and_names_every_command():
    done = mockpanel("--help")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert len(lines) < 40, done.stdout
    for command in COMMANDS:
        assert any(line.strip().startswith(command + " ") for line in lines), command
    assert "--s3-data-dir" not in done.stdout and "mockpanel COMMAND --help" in done.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_its_own_short_help(command):
    done = mockpanel(command, "--help")
    assert done.returncode == 0 and done.stdout.startswith(f"usage: mockpanel {command}" if command != "panel" else "usage: mockpanel [panel]")
    assert len(done.stdout.splitlines()) < 45, done.stdout


def test_serve_help_shows_the_settings_by_server_and_the_flags_still_work(tmp_path):
    help_text = mockpanel("serve", "--help").stdout
    for group in ("auth", "s3", "webhooks", "client", "imageapi", "stubs"):
        assert f"\n  {group} " in help_text, group
    assert "--s3-data-dir" not in help_text and "mockpanel settings SERVER" in help_text
    ports = tmp_path / "ports.json"
    serve = subprocess.Popen([sys.executable, "-m", "mockpanel", "serve", "--only", "s3", "--s3-port", "0", "--s3-data-dir",
                              str(tmp_path / "data"), "--ports-file", str(ports)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout.readline().startswith("s3: running at ")
        assert (tmp_path / "data").is_dir()  # the flag no help lists reached the server
    finally:
        serve.terminate()
        serve.communicate(timeout=30)


def test_settings_lists_every_setting_with_its_variable_and_default():
    done = mockpanel("settings", "s3")
    assert done.returncode == 0
    assert "--s3-data-dir" in done.stdout and "MOCKPANEL_S3_DATA_DIR S3_DATA_DIR" in done.stdout
    assert "--s3-port" in done.stdout and "default: —" in done.stdout  # the common settings too
    everything = mockpanel("settings").stdout
    assert all(f"{name}: " in everything for name in ("mockpanel", "auth", "s3", "webhooks", "client", "imageapi", "NAME"))
    assert "--admin-token" in everything and "MOCKPANEL_ADMIN_TOKEN" in everything
    unknown = mockpanel("settings", "nope")
    assert unknown.returncode == 2 and "no server 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_the_forms_scripts_already_use_are_still_taken():
    parser = build_parser()
    assert normalize_argv([], parser) == ["panel"]
    assert normalize_argv(["--only", "auth"], parser) == ["panel", "--only", "auth"]
    assert normalize_argv(["--only", "auth", "serve"], parser) == ["serve", "--only", "auth"]
    assert normalize_argv(["--only", "serve"], parser) == ["panel", "--only", "serve"]  # a value, not the command
    assert normalize_argv(["serve", "--only", "auth"], parser) == ["serve", "--only", "auth"]
    args = parser.parse_args(normalize_argv(["--headless", "--only", "auth", "--auth-port", "0"], parser))
    assert args.command == "panel" and args.headless and args.auth__port == "0"


def test_health_says_whether_every_server_answers(tmp_path):
    ports = tmp_path / "ports.json"
    missing = mockpanel("health", "--ports-file", str(ports))
    assert missing.returncode == 1 and "not written yet" in missing.stderr
    with RunningHub(settings_for(["auth", "s3"])) as running:
        ports.write_text(json.dumps(running.urls))
        assert mockpanel("health", "--ports-file", str(ports)).returncode == 0
        urls = running.urls
    stopped = mockpanel("health", env={"MOCKPANEL_PORTS_FILE": str(ports), "PATH": "/usr/bin:/bin"})
    assert stopped.returncode == 1 and f"auth ({urls['auth']}) does not answer" in stopped.stderr
    unset = mockpanel("health", env={"PATH": "/usr/bin:/bin"})
    assert unset.returncode == 2 and "MOCKPANEL_PORTS_FILE" in unset.stderr
