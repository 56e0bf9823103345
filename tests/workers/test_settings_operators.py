"""DASHBOARD_OPERATORS and PROMETHEUS_MULTIPROC_DIR as workers.settings reads them."""

from __future__ import annotations

import pytest

from workers.settings import Operator, SettingsError, load_settings

BASE = {
    "DATABASE_URL": "postgresql://u@h:5432/d",
    "BROKER_URL": "redis://127.0.0.1:6379/0",
    "STRIPE_API_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRETS": "whsec_x",
}


def test_operators_are_named_with_roles_and_the_lone_token_is_admin():
    settings = load_settings(
        {
            **BASE,
            "DASHBOARD_OPERATORS": "alice:alice-token-0123456789:admin, bob:bob-token-0123456789ab:read",
            "DASHBOARD_TOKEN": "shared-token-0123456789",
        }
    )
    assert settings.dashboard_operators == (
        Operator("alice", "alice-token-0123456789", "admin"),
        Operator("bob", "bob-token-0123456789ab", "read"),
        Operator("admin", "shared-token-0123456789", "admin"),
    )
    assert [o.can_act for o in settings.dashboard_operators] == [True, False, True]
    assert load_settings(BASE).dashboard_operators == ()


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("alice:short:admin", "alice's token has under 16 characters"),
        ("alice:alice-token-0123456789:owner", "alice's role is not one of"),
        ("Alice Smith:alice-token-0123456789:admin", "is not a name"),
        ("a:alice-token-0123456789:admin,a:other-token-0123456789:read", "two operators share a name"),
        ("a:alice-token-0123456789:admin,b:alice-token-0123456789:read", "two operators share a token"),
    ],
)
def test_a_malformed_operator_list_names_the_problem_without_the_token(value, complaint):
    with pytest.raises(SettingsError) as raised:
        load_settings({**BASE, "DASHBOARD_OPERATORS": value})
    assert complaint in str(raised.value) and "DASHBOARD_OPERATORS" in str(raised.value)
    assert "0123456789" not in str(raised.value)


def test_the_metrics_directory_must_exist(tmp_path):
    assert load_settings({**BASE, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).metrics_dir == str(tmp_path)
    with pytest.raises(SettingsError, match="PROMETHEUS_MULTIPROC_DIR"):
        load_settings({**BASE, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})
