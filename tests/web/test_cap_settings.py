"""The public server's abuse caps as the environment sets them: read by the settings, checked there."""

from __future__ import annotations

import pytest

from reallabor_mail.errors import SettingsError
from reallabor_mail.settings import Settings


@pytest.mark.parametrize("value", ["0", "zehn", "-3", "2.5"])
def test_an_abuse_cap_from_the_environment_must_be_a_positive_number(value: str) -> None:
    settings = Settings.from_environ({"REALLABOR_SIGN_UPS_PER_CLIENT": value})
    with pytest.raises(SettingsError, match=r"^REALLABOR_SIGN_UPS_PER_CLIENT: .* is not a positive whole number"):
        settings.server_limit("REALLABOR_SIGN_UPS_PER_CLIENT")


def test_an_abuse_cap_is_read_from_the_environment_by_the_settings() -> None:
    settings = Settings.from_environ({"REALLABOR_CONFIRMATIONS_PER_HOUR": " 7 "})
    assert settings.server_limit("REALLABOR_CONFIRMATIONS_PER_HOUR") == 7
    assert settings.server_limit("REALLABOR_SIGN_UPS_PER_CLIENT") is None
