"""Every setting is declared once (core keys in digest.settings, each backend's in its class), and
what lists or checks settings reads those declarations: .env.example, the GitHub workflow of
``digest schedule``, the checks of ``validate --subscribers`` and the scrubber."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from digest.backends.base import backend_names, load_backend
from digest.errors import ConfigError
from digest.schedule import github_workflow
from digest.settings import declared_settings, every_declared_key, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_env_example_lists_every_declared_key_with_a_value_that_reads() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    # "KEY=value", or "# KEY=value" for an opt-in a curator should not set by accident.
    listed = dict(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", example, flags=re.M))
    keys = every_declared_key()
    assert {"DIGEST_FROM", "SMTP_HOST", "MAILGUN_API_KEY"} <= {k.env for k in keys}
    missing = [key.env for key in keys if key.env not in listed]
    assert not missing, f".env.example lacks {missing}: add a line with a comment for each"
    for key in keys:
        # The example value is a valid value of the key (quotes as python-dotenv strips them).
        key.read({key.env: listed[key.env].strip('"')})


def test_every_builtin_backend_declares_its_keys_where_it_lives() -> None:
    declared = declared_settings()
    assert next(iter(declared)) == "core"
    for name in ("smtp", "mailgun", "outbox"):
        assert declared[name] == load_backend(name).declared_settings
    assert {k.env for k in declared["smtp"]} >= {"SMTP_HOST", "SMTP_PASSWORD"}
    assert {k.env for k in declared["mailgun"] if k.secret} == {"MAILGUN_API_KEY"}
    assert set(backend_names()) <= set(declared)


def test_the_workflow_passes_every_key_secrets_as_secrets() -> None:
    workflow = github_workflow()
    for key in every_declared_key():
        if key.env == "DIGEST_STATE_DIR":
            assert "DIGEST_STATE_DIR: .digest" in workflow
        elif key.secret:
            assert f"{key.env}: ${{{{ secrets.{key.env} }}}}" in workflow
        else:
            assert f"{key.env}: ${{{{ vars.{key.env} }}}}" in workflow


def test_a_backends_check_reports_every_missing_key_then_every_wrong_value() -> None:
    mailgun = load_backend("mailgun")
    with pytest.raises(ConfigError, match=r"missing settings: MAILGUN_API_KEY, MAILGUN_DOMAIN$"):
        mailgun.check_settings(load_settings({"DIGEST_FROM": "a@example.org"}, env_file=None))
    wrong = load_settings(
        {
            "DIGEST_FROM": "a@example.org",
            "MAILGUN_API_KEY": "key-1",
            "MAILGUN_DOMAIN": "mg.example.org/v3",
            "MAILGUN_API_URL": "ftp://api.example.org",
        },
        env_file=None,
    )
    with pytest.raises(ConfigError) as raised:
        mailgun.check_settings(wrong)
    assert str(raised.value) == (
        "MAILGUN_DOMAIN must be a domain name such as mg.example.org, not 'mg.example.org/v3'; "
        "MAILGUN_API_URL must be an http(s) URL, not 'ftp://api.example.org'"
    )


def test_every_declared_secret_and_its_encoded_forms_are_scrubbed() -> None:
    settings = load_settings(
        {
            "DIGEST_SECRET": "core-secret-0123456789abcdef0123456789",
            "SMTP_USERNAME": "curator",
            "SMTP_PASSWORD": "smtp-pass-42",
            "MAILGUN_API_KEY": "key-mg-42",
        },
        env_file=None,
    )
    text = (
        "core-secret-0123456789abcdef0123456789 smtp-pass-42 key-mg-42 "
        "c210cC1wYXNzLTQy AGN1cmF0b3IAc210cC1wYXNzLTQy YXBpOmtleS1tZy00Mg=="
    )
    assert settings.scrub(text) == "*** *** *** *** *** ***"
    assert sorted(settings.secrets()) == sorted(
        ["core-secret-0123456789abcdef0123456789", "smtp-pass-42", "key-mg-42"]
    )


def test_a_line_break_in_any_declared_value_is_refused_where_it_is_read() -> None:
    with pytest.raises(ConfigError, match="DIGEST_FROM holds a line break"):
        load_settings({"DIGEST_FROM": "a@example.org\nBcc: x@example.org"}, env_file=None)
    settings = load_settings({"SMTP_HOST": "smtp.example.org\r\nX: y"}, env_file=None)
    with pytest.raises(ConfigError, match="SMTP_HOST holds a line break"):
        load_backend("smtp").check_settings(settings)
