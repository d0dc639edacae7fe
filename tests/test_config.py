"""Configuration: YAML + STSYNC_ environment overrides, secrets from files, one-line errors naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from typer.testing import CliRunner

from stsync.checks import check_token_cache
from stsync.cli.main import app
from stsync.config import explain_config, load_config
from stsync.errors import ConfigError
from stsync.masking import mask_dsn as mask_url
from tests.sandbox_creds import CLIENT_SECRET, SANDBOX_ENV

STSYNC = str(Path(sys.executable).with_name("stsync"))
SECRET = "s3cr3t-Value-9f2c"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own STSYNC_ variables must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("STSYNC_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stsync.yaml"
    path.write_text(text)
    return path


def test_defaults_without_any_file() -> None:
    """No file and no environment is a valid (if incomplete) configuration."""
    config = load_config(None, env={})
    assert config.servicetitan.environment == "production"
    assert config.servicetitan.api_base() == "https://api.servicetitan.io"
    assert config.servicetitan.auth_base() == "https://auth.servicetitan.io"
    assert config.servicetitan.page_size == 5000
    assert config.servicetitan.requests_per_second == 50
    assert config.database.url is None
    assert config.sync.streams_exclude == ()
    assert config.logging.format == "auto"


def test_integration_environment_and_url_overrides(tmp_path: Path) -> None:
    """environment picks the hosts; api_base_url and auth_url override them (trailing slash dropped)."""
    config = load_config(None, env={"STSYNC_SERVICETITAN__ENVIRONMENT": "integration"})
    assert config.servicetitan.api_base() == "https://api-integration.servicetitan.io"
    assert config.servicetitan.auth_base() == "https://auth-integration.servicetitan.io"
    path = _yaml(tmp_path, "servicetitan:\n  api_base_url: http://127.0.0.1:8765/\n  auth_url: http://127.0.0.1:8765\n")
    config = load_config(path, env={})
    assert config.servicetitan.api_base() == "http://127.0.0.1:8765"
    assert config.servicetitan.auth_base() == "http://127.0.0.1:8765"


def test_unknown_key_in_yaml_is_named_with_the_file(tmp_path: Path) -> None:
    """A typo in the YAML file is an error naming section.key and the file."""
    path = _yaml(tmp_path, "servicetitan:\n  client_secrte: x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"config error: unknown key 'servicetitan.client_secrte' in {path}"
    with pytest.raises(ConfigError, match="unknown key 'servicetitn'"):
        load_config(_yaml(tmp_path, "servicetitn:\n  tenant_id: 1\n"), env={})


def test_unknown_key_in_environment_is_named() -> None:
    """A misspelt STSYNC_<SECTION>__<KEY> variable is an error naming the key and the variable."""
    with pytest.raises(ConfigError, match=r"unknown key 'database\.uri' in environment variable STSYNC_DATABASE__URI"):
        load_config(None, env={"STSYNC_DATABASE__URI": "postgresql://x"})
    with pytest.raises(ConfigError, match="unknown section 'databse'"):
        load_config(None, env={"STSYNC_DATABSE__URL": "postgresql://x"})


def test_non_config_stsync_variables_are_ignored() -> None:
    """STSYNC_CONFIG, STSYNC_PG_BINDIR… have no '__' and are not config keys."""
    load_config(None, env={"STSYNC_PG_BINDIR": "/x", "STSYNC_RETRY_NO_WAIT": "1"})


def test_environment_overrides_yaml_and_says_so(tmp_path: Path) -> None:
    """STSYNC_SERVICETITAN__PAGE_SIZE beats the file; the source of each value is reported."""
    path = _yaml(tmp_path, "servicetitan:\n  page_size: 100\n  tenant_id: 5\nsync:\n  streams_exclude: [a]\n")
    config, sources = explain_config(
        path, env={"STSYNC_SERVICETITAN__PAGE_SIZE": "250", "STSYNC_SYNC__STREAMS_EXCLUDE": "jobs, estimates"}
    )
    assert config.servicetitan.page_size == 250
    assert config.servicetitan.tenant_id == 5
    assert config.sync.streams_exclude == ("jobs", "estimates")
    assert sources["servicetitan.page_size"] == "env STSYNC_SERVICETITAN__PAGE_SIZE"
    assert sources["servicetitan.tenant_id"] == f"file {path}"


def test_config_path_from_stsync_config(tmp_path: Path) -> None:
    """$STSYNC_CONFIG names the file when no path is given."""
    path = _yaml(tmp_path, "logging:\n  level: debug\n")
    assert load_config(None, env={"STSYNC_CONFIG": str(path)}).logging.level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"STSYNC_SERVICETITAN__PAGE_SIZE": "6000"}, "bad value for 'servicetitan.page_size'"),
        (
            {"STSYNC_SERVICETITAN__REQUESTS_PER_SECOND": "0"},
            "bad value for 'servicetitan.requests_per_second'",
        ),
        ({"STSYNC_SERVICETITAN__TENANT_ID": "abc"}, "bad value for 'servicetitan.tenant_id'"),
        ({"STSYNC_SERVICETITAN__ENVIRONMENT": "staging"}, "bad value for 'servicetitan.environment'"),
        (
            {"STSYNC_SERVICETITAN__API_BASE_URL": "127.0.0.1:8765"},
            "bad value for 'servicetitan.api_base_url'",
        ),
        ({"STSYNC_LOGGING__FORMAT": "xml"}, "bad value for 'logging.format'"),
    ],
)
def test_bad_value_names_key_and_problem(env: dict[str, str], expected: str) -> None:
    """A bad value is one line naming the key, where it came from and what is wrong."""
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert next(iter(env)) in message


def test_bad_yaml_is_one_line_with_the_line_number(tmp_path: Path) -> None:
    """Broken YAML says which line, in one line."""
    with pytest.raises(ConfigError, match=r"stsync.yaml at line \d+: ") as info:
        load_config(_yaml(tmp_path, "database:\n  url: [unclosed\n"), env={})
    assert "\n" not in str(info.value)


def test_secret_from_file_in_yaml_and_in_environment(tmp_path: Path) -> None:
    """client_secret_file / STSYNC_…_FILE read the secret from a file (trailing newline dropped)."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    path = _yaml(tmp_path, f"servicetitan:\n  client_secret_file: {secret_file}\n")
    config = load_config(path, env={})
    assert config.servicetitan.client_secret is not None
    assert config.servicetitan.client_secret.get_secret_value() == SECRET
    config = load_config(None, env={"STSYNC_SERVICETITAN__APP_KEY_FILE": str(secret_file)})
    assert config.servicetitan.app_key is not None
    assert config.servicetitan.app_key.get_secret_value() == SECRET


def test_secret_and_secret_file_together_is_an_error(tmp_path: Path) -> None:
    """Setting both a secret and its _file in one place is ambiguous and refused."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    path = _yaml(tmp_path, f"servicetitan:\n  app_key: x\n  app_key_file: {secret_file}\n")
    with pytest.raises(ConfigError, match=r"both 'servicetitan\.app_key' and 'servicetitan\.app_key_file'"):
        load_config(path, env={})


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    """An unreadable secret file names the key and the path, not a traceback."""
    with pytest.raises(ConfigError, match=r"'database\.url_file': cannot read .*nope"):
        load_config(None, env={"STSYNC_DATABASE__URL_FILE": str(tmp_path / "nope")})


def test_secrets_from_systemd_credentials_directory(tmp_path: Path) -> None:
    """$CREDENTIALS_DIRECTORY/<section.key> supplies secrets (systemd LoadCredential=); env still wins."""
    (tmp_path / "servicetitan.client_secret").write_text(SECRET)
    (tmp_path / "database.url").write_text("postgresql://u:pw@db/stsync\n")
    config, sources = explain_config(None, env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.servicetitan.client_secret is not None
    assert config.servicetitan.client_secret.get_secret_value() == SECRET
    assert sources["servicetitan.client_secret"] == "credential servicetitan.client_secret"
    assert config.database.url is not None
    assert config.database.url.get_secret_value() == "postgresql://u:pw@db/stsync"
    config = load_config(None, env={"CREDENTIALS_DIRECTORY": str(tmp_path), "STSYNC_DATABASE__URL": "postgresql://x"})
    assert config.database.url is not None
    assert config.database.url.get_secret_value() == "postgresql://x"


def test_config_is_frozen_and_repr_hides_secrets() -> None:
    """The config cannot be changed after loading, and its repr never shows a secret."""
    config = load_config(None, env={"STSYNC_SERVICETITAN__CLIENT_SECRET": SECRET})
    with pytest.raises(pydantic.ValidationError):
        config.servicetitan.page_size = 1  # type: ignore[misc]
    assert SECRET not in repr(config)
    assert SECRET not in str(config)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:********@h:5432/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        (
            "postgresql://h/db?password=pw&sslmode=require",
            "postgresql://h/db?password=********&sslmode=require",
        ),
        ("host=h user=u password=pw dbname=d", "host=h user=u password=******** dbname=d"),
        ("host=h password='p w' dbname=d", "host=h password=******** dbname=d"),
    ],
)
def test_database_url_password_is_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# --- CLI --------------------------------------------------------------------------------------


def test_show_masks_secrets(tmp_path: Path) -> None:
    """`config show` prints the effective YAML with secrets as ******** and sources as comments."""
    runner = CliRunner()
    env = {
        "STSYNC_DATABASE__URL": f"postgresql://stsync:{SECRET}@db.example:5432/stsync",
        "STSYNC_SERVICETITAN__CLIENT_SECRET": SECRET,
        "STSYNC_SERVICETITAN__APP_KEY": SECRET,
        "STSYNC_SERVICETITAN__TENANT_ID": "42",
        "STSYNC_SMTP__PASSWORD": SECRET,
    }
    result = runner.invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "password: '********'  # env STSYNC_SMTP__PASSWORD" in result.output
    assert "client_secret: '********'  # env STSYNC_SERVICETITAN__CLIENT_SECRET" in result.output
    assert "url: 'postgresql://stsync:********@db.example:5432/stsync'" in result.output
    assert "tenant_id: 42" in result.output
    assert "page_size: 5000  # default" in result.output


def test_cli_unknown_key_exits_78(tmp_path: Path) -> None:
    """Through the real console script: one `stsync: error:` line naming the key, exit code 78."""
    path = _yaml(tmp_path, "servicetitan:\n  client_secrte: x\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    proc = subprocess.run(
        [STSYNC, "--config", str(path), "config", "show"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 78
    assert proc.stderr.strip() == f"stsync: error: config error: unknown key 'servicetitan.client_secrte' in {path}"


@pytest.fixture
def sandbox() -> Iterator[Any]:
    from stsync.sandbox import Sandbox, SandboxOptions

    with Sandbox.start(SandboxOptions(scale="small")) as sb:
        yield sb


def _check_env(sandbox: Any, dsn: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STSYNC_")}
    env.update(
        {
            "STSYNC_DATABASE__URL": dsn,
            "STSYNC_SERVICETITAN__AUTH_URL": sandbox.url,
            "STSYNC_SERVICETITAN__API_BASE_URL": sandbox.url,
            **SANDBOX_ENV,
            "STSYNC_SERVICETITAN__CLIENT_SECRET": secret,
        }
    )
    return env


def test_check_passes_against_database_and_sandbox(sandbox: Any, pg_server: Any) -> None:
    """`config check` connects to PostgreSQL and gets a token from the sandbox: exit 0."""
    proc = subprocess.run(
        [STSYNC, "config", "check"],
        env=_check_env(sandbox, pg_server.dsn, CLIENT_SECRET),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "database: ok" in proc.stdout
    assert "servicetitan token: ok" in proc.stdout
    assert "token cache: ok: " in proc.stdout


def test_check_reports_an_unwritable_token_cache_without_failing(tmp_path: Path) -> None:
    """A token cache directory that cannot be made is reported by name; the other checks decide the exit code."""
    (tmp_path / "a-file").write_text("")
    config = load_config(None, {"STSYNC_SERVICETITAN__TOKEN_CACHE_DIR": str(tmp_path / "a-file" / "cache")})
    check = check_token_cache(config)
    assert not check.ok and check.error is None
    assert check.detail.startswith(f"cannot write {tmp_path / 'a-file' / 'cache'}: ")
    off = load_config(None, {"STSYNC_SERVICETITAN__TOKEN_CACHE": "false"})
    assert check_token_cache(off).detail == "off: every run asks for a token"


def test_check_refused_credentials_exit_78(sandbox: Any, pg_server: Any) -> None:
    """Wrong client secret: the token check fails with exit 78 and the secret is not printed."""
    wrong = "wrong-" + SECRET
    proc = subprocess.run(
        [STSYNC, "config", "check"],
        env=_check_env(sandbox, pg_server.dsn, wrong),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 78
    assert "database: ok" in proc.stdout
    assert "servicetitan token: failed: " in proc.stdout
    assert wrong not in proc.stdout + proc.stderr


def test_check_unreachable_services_exit_69() -> None:
    """Nothing listening: both checks fail, exit 69, and the database password is not shown."""
    runner = CliRunner()
    env = {
        "STSYNC_DATABASE__URL": f"postgresql://u:{SECRET}@127.0.0.1:1/db",
        "STSYNC_DATABASE__CONNECT_TIMEOUT": "2",
        "STSYNC_SERVICETITAN__AUTH_URL": "http://127.0.0.1:1",
        "STSYNC_SERVICETITAN__TENANT_ID": "1",
        "STSYNC_SERVICETITAN__CLIENT_ID": "id",
        "STSYNC_SERVICETITAN__CLIENT_SECRET": SECRET,
        "STSYNC_SERVICETITAN__APP_KEY": SECRET,
    }
    result = runner.invoke(app, ["config", "check"], env=env)
    assert result.exit_code == 69, result.output
    assert "database: failed: cannot connect to PostgreSQL at 127.0.0.1:1/db: Connection refused" in result.output
    assert "servicetitan token: failed: ServiceTitan at 127.0.0.1:1 unreachable for " in result.output
    assert SECRET not in result.output


def test_check_missing_secret_names_it_and_its_sources() -> None:
    """A missing secret is reported with every place it may come from; exit 78."""
    runner = CliRunner()
    env = {
        "STSYNC_SERVICETITAN__TENANT_ID": "1",
        "STSYNC_SERVICETITAN__CLIENT_ID": "id",
        "STSYNC_DATABASE__URL": "postgresql://127.0.0.1:1/x",
        "STSYNC_DATABASE__CONNECT_TIMEOUT": "1",
    }
    result = runner.invoke(app, ["config", "check"], env=env)
    assert result.exit_code == 78, result.output
    assert "missing secret 'servicetitan.client_secret'" in result.output
    assert "STSYNC_SERVICETITAN__CLIENT_SECRET[_FILE]" in result.output
    assert "systemd credential 'servicetitan.client_secret'" in result.output


def test_example_config_documents_every_key_and_loads(tmp_path: Path) -> None:
    """config.example.yaml names every key of every section (commented or not) and is itself valid."""
    from stsync.config import SECRET_KEYS, SECTIONS

    example = Path(__file__).resolve().parents[1] / "config.example.yaml"
    text = example.read_text()
    for section, model in SECTIONS.items():
        assert f"\n{section}:" in text
        for key in model.model_fields:
            if f"{section}.{key}" in SECRET_KEYS:
                assert f" {key}:" in text or f" {key}_file:" in text, f"{section}.{key} undocumented"
            else:
                assert f" {key}:" in text, f"{section}.{key} undocumented"
    # The secret files it names do not exist here; drop those lines to check the rest validates.
    plain = "\n".join(line for line in text.splitlines() if "_file:" not in line)
    load_config(_yaml(tmp_path, plain), env={})


def test_smtp_without_tls_is_only_for_a_loopback_host() -> None:
    """The email action's password would cross the network in clear: `tls: none` is refused for other hosts."""
    with pytest.raises(ConfigError) as exc:
        load_config(None, env={"STSYNC_SMTP__HOST": "mail.example.com", "STSYNC_SMTP__TLS": "none"})
    assert "'smtp.tls'" in exc.value.message and "loopback" in exc.value.message
    assert load_config(None, env={"STSYNC_SMTP__HOST": "127.0.0.1", "STSYNC_SMTP__TLS": "none"}).smtp.tls == "none"
