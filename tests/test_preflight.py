"""The checks run before a send and by `digest validate --subscribers`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from digest.edition.load import load_edition_text
from digest.edition.model import Edition
from digest.errors import Problem
from digest.send.preflight import check_send_setup
from digest.settings import Settings, load_settings

EDITION = """\
    newsletter: Clippings
    edition: March 2026
    slug: 2026-03
    subject: "Clippings, March 2026"
    sections:
      - title: Research Papers
        items:
          - title: A paper about speech
            url: https://arxiv.org/abs/2601.00001
"""

GOOD = {
    "DIGEST_FROM": "Clippings <clippings@example.org>",
    "DIGEST_SECRET": "preflight-secret-5e8a-3b7d1f9c0e2a",
    "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "2525",
    "SMTP_SECURITY": "none",
    "MAILGUN_API_KEY": "key-preflight-9f9f9f",
}


@pytest.fixture
def edition() -> Edition:
    return load_edition_text(textwrap.dedent(EDITION), "content/2026-03.yaml")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # where a .env would be looked for
    return tmp_path


def settings_with(**changes: str) -> Settings:
    environ = {k: v for k, v in (GOOD | changes).items() if v}
    return load_settings(environ, env_file=None)


def csv(workdir: Path, text: str = "email,name\nada@example.org,Ada\n") -> Path:
    path = workdir / "subscribers.csv"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def fields(problems: list[Problem]) -> list[str | None]:
    return [p.field for p in problems]


def test_a_good_setup_has_no_problem(workdir: Path, edition: Edition) -> None:
    assert check_send_setup(edition, csv(workdir), settings_with(), "smtp") == []


def test_row_problems_are_reported_at_their_csv_line(workdir: Path, edition: Edition) -> None:
    path = csv(workdir, "email,status\nada@example.org,\nnot-an-address,\nbob@example.org,gone\n")
    problems = check_send_setup(edition, path, settings_with(), "smtp")
    assert [(p.path, p.line, p.field) for p in problems] == [
        (str(path), 3, "email"),
        (str(path), 4, "status"),
    ]


def test_an_unusable_file_is_a_problem(workdir: Path, edition: Edition) -> None:
    problems = check_send_setup(
        edition, csv(workdir, "address\nx@example.org\n"), settings_with(), None
    )
    assert len(problems) == 1 and "no `email` column" in problems[0].message
    missing = check_send_setup(edition, workdir / "nope.csv", settings_with(), None)
    assert len(missing) == 1 and "cannot read" in missing[0].message


def test_missing_send_settings_are_each_named(workdir: Path, edition: Edition) -> None:
    settings = settings_with(
        DIGEST_FROM="", DIGEST_SECRET="", DIGEST_UNSUBSCRIBE_URL="", SMTP_HOST=""
    )
    problems = check_send_setup(edition, csv(workdir), settings, "smtp")
    assert fields(problems) == ["DIGEST_FROM", "DIGEST_SECRET", "DIGEST_UNSUBSCRIBE_URL", None]
    assert all(p.path == "environment" and p.line is None for p in problems)
    assert "SMTP_HOST" in problems[-1].message
    assert str(problems[0]).startswith("environment: DIGEST_FROM: missing")


def test_problems_point_at_the_env_file_when_there_is_one(workdir: Path, edition: Edition) -> None:
    (workdir / ".env").write_text("DIGEST_FROM=\n")
    problems = check_send_setup(edition, csv(workdir), settings_with(DIGEST_FROM=""), "smtp")
    assert [(p.path, p.field) for p in problems] == [(".env", "DIGEST_FROM")]


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("DIGEST_FROM", "Clippings"),
        ("DIGEST_FROM", "Clippings <clippings@>"),
        ("DIGEST_FROM", "a@example.org, b@example.org"),
        ("DIGEST_REPLY_TO", "editor at example dot org"),
        ("DIGEST_UNSUBSCRIBE_MAILTO", "mailto:nobody"),
    ],
)
def test_wrong_addresses_are_problems(
    workdir: Path, edition: Edition, setting: str, value: str
) -> None:
    problems = check_send_setup(edition, csv(workdir), settings_with(**{setting: value}), "smtp")
    assert fields(problems) == [setting]


def test_a_mailto_alone_is_enough_for_the_unsubscribe_link(workdir: Path, edition: Edition) -> None:
    settings = settings_with(
        DIGEST_UNSUBSCRIBE_URL="", DIGEST_UNSUBSCRIBE_MAILTO="unsubscribe@example.org"
    )
    assert check_send_setup(edition, csv(workdir), settings, "smtp") == []


def test_a_test_proof_does_not_need_the_unsubscribe_settings(
    workdir: Path, edition: Edition
) -> None:
    settings = settings_with(DIGEST_SECRET="", DIGEST_UNSUBSCRIBE_URL="")
    assert check_send_setup(edition, csv(workdir), settings, "smtp", test=True) == []


def test_an_unknown_backend_is_reported_where_its_name_came_from(
    workdir: Path, edition: Edition
) -> None:
    from_option = check_send_setup(edition, csv(workdir), settings_with(), "carrier-pigeon")
    (problem,) = from_option
    assert str(problem).startswith("--backend: unknown backend 'carrier-pigeon' (installed: ")
    assert problem.field is None and "outbox, smtp" in problem.message
    from_setting = check_send_setup(
        edition, csv(workdir), settings_with(DIGEST_BACKEND="carrier-pigeon"), None
    )
    assert fields(from_setting) == ["DIGEST_BACKEND"]
    assert from_setting[0].path in (".env", "environment")
    assert "'carrier-pigeon'" in from_setting[0].message and "smtp" in from_setting[0].message


def test_the_backend_named_in_settings_is_checked_and_no_secret_is_shown(
    workdir: Path, edition: Edition
) -> None:
    settings = settings_with(DIGEST_BACKEND="mailgun")  # MAILGUN_DOMAIN missing
    problems = check_send_setup(edition, csv(workdir), settings, None)
    assert len(problems) == 1 and "MAILGUN_DOMAIN" in problems[0].message
    shown = "\n".join(str(p) for p in problems)
    assert all(secret not in shown for secret in settings.secrets())
