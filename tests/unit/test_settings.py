import pytest

from rampart.db.settings import DatabaseSettings, SettingsError

BASE = {"RAMPART_DB_HOST": "db.internal", "RAMPART_DB_USER": "rampart_api", "AWS_REGION": "eu-west-1"}


def test_defaults_are_iam_and_verify_full() -> None:
    s = DatabaseSettings.from_env(BASE)
    assert (s.auth, s.sslmode, s.port, s.name, s.statement_timeout_ms) == (
        "iam",
        "verify-full",
        5432,
        "rampart",
        5000,
    )
    assert s.region == "eu-west-1"


def test_iam_refuses_weaker_tls() -> None:
    with pytest.raises(SettingsError, match="verify-full"):
        DatabaseSettings.from_env({**BASE, "RAMPART_DB_SSLMODE": "require"})


def test_iam_needs_region() -> None:
    env = {k: v for k, v in BASE.items() if k != "AWS_REGION"}
    with pytest.raises(SettingsError, match="AWS_REGION"):
        DatabaseSettings.from_env(env)


def test_password_mode_needs_exactly_one_source() -> None:
    env = {**BASE, "RAMPART_DB_AUTH": "password"}
    with pytest.raises(SettingsError):
        DatabaseSettings.from_env(env)
    with pytest.raises(SettingsError):
        DatabaseSettings.from_env({**env, "RAMPART_DB_PASSWORD": "p", "RAMPART_DB_PASSWORD_SECRET_ARN": "arn"})
    assert DatabaseSettings.from_env({**env, "RAMPART_DB_PASSWORD": "p"}).password == "p"


def test_errors_never_echo_values() -> None:
    secret = "s3cr3t-do-not-print"
    with pytest.raises(SettingsError) as err:
        DatabaseSettings.from_env({**BASE, "RAMPART_DB_PASSWORD": secret, "RAMPART_DB_PORT": "99999"})
    assert secret not in str(err.value)
    assert "99999" not in str(err.value)
    assert "RAMPART_DB_PORT" in str(err.value)


def test_unknown_variable_is_an_error() -> None:
    with pytest.raises(SettingsError, match="RAMPART_DB_HOSTNAME"):
        DatabaseSettings.from_env({**BASE, "RAMPART_DB_HOSTNAME": "typo"})


def test_password_not_in_repr() -> None:
    s = DatabaseSettings.from_env({**BASE, "RAMPART_DB_AUTH": "password", "RAMPART_DB_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(s)
