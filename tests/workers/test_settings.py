import pytest

from workers.settings import SettingsError, load_settings

VALID = {
    "DATABASE_URL": "postgresql://app@db.internal:5432/remit",
    "BROKER_URL": "redis://cache.internal:6379/0",
    "STRIPE_API_KEY": "sk_test_123",
    "STRIPE_WEBHOOK_SECRETS": "whsec_old, whsec_new",
}


def test_valid_environment_loads_with_defaults():
    settings = load_settings(VALID)
    assert settings.database_url == "postgresql+psycopg://app@db.internal:5432/remit"
    assert settings.stripe_webhook_secrets == ("whsec_old", "whsec_new")
    assert settings.stripe_requests_per_second == 25
    assert settings.stripe_api_base == "https://api.stripe.com"
    assert settings.broker_kind == "redis"
    assert settings.sentry_dsn is None


def test_amqp_broker_is_rabbitmq():
    assert (
        load_settings({**VALID, "BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/"}).broker_kind == "rabbitmq"
    )


def test_settings_are_frozen():
    settings = load_settings(VALID)
    with pytest.raises(AttributeError):
        settings.database_url = "x"


@pytest.mark.parametrize("name", ["DATABASE_URL", "BROKER_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRETS"])
def test_missing_required_variable_is_named(name):
    environ = {k: v for k, v in VALID.items() if k != name}
    with pytest.raises(SettingsError, match=f"^{name} is missing"):
        load_settings(environ)


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("DATABASE_URL", "mysql://app@db/remit", "scheme 'mysql'"),
        ("DATABASE_URL", "postgresql://app@db.internal:5432/", "names no database"),
        ("DATABASE_URL", "not a url", "scheme"),
        ("BROKER_URL", "kafka://broker:9092", "scheme 'kafka'"),
        ("BROKER_URL", "redis://", "names no host"),
        ("STRIPE_API_KEY", "pk_test_123", "must start with sk_ or rk_"),
        ("STRIPE_WEBHOOK_SECRETS", "whsec_ok,oops", "must start with whsec_"),
        ("STRIPE_REQUESTS_PER_SECOND", "fast", "not a number"),
        ("STRIPE_REQUESTS_PER_SECOND", "0", "greater than zero"),
        ("STRIPE_API_BASE", "ftp://emulator", "not an http"),
        ("SMTP_URL", "imap://mail", "scheme 'imap'"),
        ("DASHBOARD_TOKEN", "short", "at least 16"),
        ("REMIT_DEPLOYMENT", "Prod EU", "is not 1-40 of a-z"),
        ("REMIT_DEPLOYMENT", "x" * 41, "is not 1-40 of a-z"),
    ],
)
def test_malformed_variable_is_named_with_reason(name, value, complaint):
    with pytest.raises(SettingsError) as caught:
        load_settings({**VALID, name: value})
    message = str(caught.value)
    assert message.startswith(f"{name} is malformed")
    assert complaint in message


def test_the_deployment_marker_defaults_to_remit_and_is_configurable():
    assert load_settings(VALID).deployment == "remit"
    assert load_settings({**VALID, "REMIT_DEPLOYMENT": "acme-eu_2"}).deployment == "acme-eu_2"


def test_a_command_that_needs_less_loads_without_the_rest():
    from workers.settings import load_settings

    only_database = {"DATABASE_URL": VALID["DATABASE_URL"], "STRIPE_API_KEY": "pk_wrong"}
    settings = load_settings(only_database, needed=("DATABASE_URL",))
    assert settings.database_url == "postgresql+psycopg://app@db.internal:5432/remit"
    assert (settings.broker_url, settings.stripe_api_key, settings.stripe_webhook_secrets) == ("", "", ())
    with pytest.raises(SettingsError, match="^DATABASE_URL is missing"):
        load_settings({}, needed=("DATABASE_URL",))
    assert load_settings({**VALID, "BROKER_URL": "kafka://x"}, needed=("DATABASE_URL",)).broker_url == ""


@pytest.mark.parametrize(
    ("kind", "threads", "overflow"),
    [
        ("worker", 8, 10),
        ("worker", 2, 4),
        ("webhooks", 4, 5),
        ("dashboard", 4, 5),
        ("clock", 1, 2),
        ("command", 1, 2),
    ],
)
def test_pool_sizes_follow_the_kind_of_process(kind, threads, overflow):
    from workers.settings import process_kind_environ

    settings = load_settings({**VALID, **process_kind_environ(kind, threads)})
    assert (settings.database_pool_size, settings.database_max_overflow) == (1, overflow)


def test_pool_sizes_can_be_set_and_are_checked():
    settings = load_settings({**VALID, "DATABASE_POOL_SIZE": "5", "DATABASE_MAX_OVERFLOW": "0"})
    assert (settings.database_pool_size, settings.database_max_overflow) == (5, 0)
    with pytest.raises(
        SettingsError, match="^DATABASE_POOL_SIZE is malformed: '0' is not a whole number, 1 or more"
    ):
        load_settings({**VALID, "DATABASE_POOL_SIZE": "0"})
    assert load_settings(VALID).database_max_overflow == 10  # a process no remit command sized
