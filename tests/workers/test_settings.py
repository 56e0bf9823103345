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
        ("STRIPE_ENDPOINT_REQUESTS_PER_SECOND", "-5", "greater than zero"),
        ("STRIPE_SEARCH_REQUESTS_PER_SECOND", "lots", "not a number"),
        ("STRIPE_ENDPOINT_LIMITS", "POST /v1/payment_intents", "is not an endpoint limit"),
        ("STRIPE_ENDPOINT_LIMITS", "GET /v1/payment_intents/{id}=0", "positive number"),
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


def test_stripe_limits_default_to_stripes_documented_shape_and_take_exceptions():
    settings = load_settings(VALID)
    assert (settings.stripe_endpoint_requests_per_second, settings.stripe_search_requests_per_second) == (
        25,
        20,
    )
    assert settings.stripe_endpoint_limits == ()
    raised = load_settings(
        {**VALID, "STRIPE_ENDPOINT_LIMITS": "POST /v1/payment_intents=100,GET /v1/payment_intents/{id}=50"}
    )
    assert raised.stripe_endpoint_limits == (
        ("POST /v1/payment_intents", 100.0),
        ("GET /v1/payment_intents/{id}", 50.0),
    )


def test_the_authentication_window_and_portal_page_have_defaults_and_are_configurable():
    settings = load_settings(VALID)
    assert (settings.auth_window_on_session_hours, settings.auth_window_off_session_hours) == (24, 72)
    assert settings.portal_payment_url is None
    configured = load_settings(
        {
            **VALID,
            "AUTH_WINDOW_ON_SESSION_HOURS": "2",
            "AUTH_WINDOW_OFF_SESSION_HOURS": "168",
            "PORTAL_PAYMENT_URL": "https://portal.example/pay/{payment_id}",
        }
    )
    assert (configured.auth_window_on_session_hours, configured.auth_window_off_session_hours) == (2, 168)
    assert configured.portal_payment_url == "https://portal.example/pay/{payment_id}"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTH_WINDOW_ON_SESSION_HOURS", "0"),
        ("AUTH_WINDOW_ON_SESSION_HOURS", "1.5"),
        ("AUTH_WINDOW_OFF_SESSION_HOURS", "169"),
        ("PORTAL_PAYMENT_URL", "https://portal.example/pay"),  # no {payment_id}
        ("PORTAL_PAYMENT_URL", "javascript:alert(1)//{payment_id}"),
    ],
)
def test_a_malformed_window_or_portal_page_is_named(name, value):
    with pytest.raises(SettingsError, match=f"^{name} is malformed"):
        load_settings({**VALID, name: value})


def test_mail_seller_domains_default_to_none_and_are_read_as_lower_case_domains():
    assert load_settings(VALID).mail_seller_domains == frozenset()
    loaded = load_settings({**VALID, "MAIL_SELLER_DOMAINS": "Acme.test, mail.bolt.example ,"})
    assert loaded.mail_seller_domains == frozenset({"acme.test", "mail.bolt.example"})
    with pytest.raises(SettingsError, match="MAIL_SELLER_DOMAINS is malformed: 'acme' is not a domain name"):
        load_settings({**VALID, "MAIL_SELLER_DOMAINS": "acme"})


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
    ("kind", "threads", "size", "overflow"),
    [
        # a worker or receiver thread keeps its connection between messages: no backend per transaction
        ("worker", 8, 8, 2),
        ("worker", 2, 2, 2),
        ("webhooks", 4, 4, 1),
        ("dashboard", 4, 1, 5),
        ("clock", 1, 1, 2),
        ("command", 1, 1, 2),
    ],
)
def test_pool_sizes_follow_the_kind_of_process(kind, threads, size, overflow):
    from workers.settings import process_kind_environ

    settings = load_settings({**VALID, **process_kind_environ(kind, threads)})
    assert (settings.database_pool_size, settings.database_max_overflow) == (size, overflow)


def test_pool_sizes_can_be_set_and_are_checked():
    settings = load_settings({**VALID, "DATABASE_POOL_SIZE": "5", "DATABASE_MAX_OVERFLOW": "0"})
    assert (settings.database_pool_size, settings.database_max_overflow) == (5, 0)
    with pytest.raises(
        SettingsError, match="^DATABASE_POOL_SIZE is malformed: '0' is not a whole number, 1 or more"
    ):
        load_settings({**VALID, "DATABASE_POOL_SIZE": "0"})
    assert load_settings(VALID).database_max_overflow == 10  # a process no remit command sized
