"""`digest validate` as a curator runs it: the real command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "content" / "2026-03.yaml"
# The installed console script, as a curator runs it (the venv's bin/ sits next to python).
DIGEST = [str(Path(sys.executable).with_name("digest"))]


def run_digest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Settings come only from the test's own .env, never from the machine running the tests.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "SMTP_", "MAILGUN_"))
    }
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [*DIGEST, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_bundled_edition_is_ok(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    result = run_digest("validate", "content/2026-03.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == "content/2026-03.yaml: OK — Clippings, March 2026: 2 sections, 39 items\n"
    )
    assert result.stderr == ""


def test_broken_edition_prints_each_problem_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "march.yaml").write_text(
        textwrap.dedent(
            """\
            newsletter: Clippings
            edition: March 2026
            subject: Hello
            sections:
              - title: News
                items:
                  - title: One
                    url: ftp://example.org
                    summry: typo
            """
        ),
        encoding="utf-8",
    )
    result = run_digest("validate", "./march.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "./march.yaml:8:14: sections[0].items[0].url: must be an https or http URL",
        "./march.yaml:9:9: sections[0].items[0].summry: unknown key 'summry'; "
        "did you mean 'summary'?",
        "2 problems found.",
    ]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", id="binary"),
        pytest.param(b"{{{{ ]]] : : -\n\t- ? !!", id="yaml garbage"),
        pytest.param(b"a: &a [*a]\n", id="recursive alias"),
    ],
)
def test_garbage_gives_a_message_not_a_traceback(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "junk.yaml").write_bytes(content)
    result = run_digest("validate", "junk.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("junk.yaml:1:")


def test_missing_file_and_folder_exit_1(tmp_path: Path) -> None:
    for target, message in (("nope.yaml", "no such file"), (".", "is a folder")):
        result = run_digest("validate", target, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.startswith(f"{target}: {message}")
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("validate",), id="no edition"),
        pytest.param(("validate", "a.yaml", "--no-such-option"), id="unknown option"),
        pytest.param(("validate", "a.yaml", "--backend", "smtp"), id="backend without list"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_digest(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Usage: digest validate" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_the_command(tmp_path: Path) -> None:
    result = run_digest("validate", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "PATH:LINE:COL" in result.stdout
    assert "--subscribers CSV" in result.stdout


SEND_SETTINGS = """\
DIGEST_FROM="Clippings <clippings@example.org>"
DIGEST_SECRET=a-long-random-test-secret-for-tokens
DIGEST_UNSUBSCRIBE_URL=https://example.org/unsubscribe/{token}
DIGEST_BACKEND=outbox
"""


def test_subscribers_and_send_settings_ok(tmp_path: Path) -> None:
    (tmp_path / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    (tmp_path / ".env").write_text(SEND_SETTINGS, encoding="utf-8")
    (tmp_path / "subs.csv").write_text(
        "email,name\nada@example.org,Ada\ngrace@example.org,Grace\n", encoding="utf-8"
    )
    result = run_digest("validate", "2026-03.yaml", "--subscribers", "subs.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "2026-03.yaml: OK — Clippings, March 2026: 2 sections, 39 items",
        "subs.csv: 2 rows: 2 to send",
        "subs.csv: OK — ready to send with the outbox backend",
    ]
    assert not (tmp_path / ".digest").exists()  # validating creates no state folder


def test_subscribers_check_says_how_many_are_suppressed(tmp_path: Path) -> None:
    # Issue 7: validate --subscribers leaves suppressed addresses out and says how many.
    (tmp_path / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    (tmp_path / ".env").write_text(SEND_SETTINGS, encoding="utf-8")
    (tmp_path / "subs.csv").write_text(
        "email,name,status\nada@example.org,Ada,\nGrace@example.org,Grace,subscribed\n"
        "alan@example.org,Alan,unsubscribed\n",
        encoding="utf-8",
    )
    added = run_digest("suppressions", "add", "grace@example.org", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    result = run_digest("validate", "2026-03.yaml", "--subscribers", "subs.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "subs.csv: 3 rows: 1 to send, 1 suppressed, 1 unsubscribed" in result.stdout.splitlines()


def test_subscriber_and_setting_problems_exit_1_without_leaking_the_secret(
    tmp_path: Path,
) -> None:
    (tmp_path / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    settings = SEND_SETTINGS.replace('DIGEST_FROM="Clippings <clippings@example.org>"\n', "")
    (tmp_path / ".env").write_text(settings, encoding="utf-8")
    (tmp_path / "subs.csv").write_text(
        "email,name\nada@example.org,Ada\nnot-an-address,Bob\n", encoding="utf-8"
    )
    result = run_digest("validate", "2026-03.yaml", "--subscribers", "subs.csv", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("subs.csv:3") for line in lines), lines
    assert any(line.startswith(".env: DIGEST_FROM: missing") for line in lines), lines
    assert "a-long-random-test-secret-for-tokens" not in result.stdout + result.stderr


def test_an_unknown_backend_is_named_by_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    (tmp_path / ".env").write_text(SEND_SETTINGS, encoding="utf-8")
    (tmp_path / "subs.csv").write_text("email\nada@example.org\n", encoding="utf-8")
    check = ("validate", "2026-03.yaml", "--subscribers", "subs.csv")

    option = run_digest(*check, "--backend", "nope", cwd=tmp_path)
    assert option.returncode == 2  # a mistyped option is a usage error
    assert "'--backend': unknown backend 'nope' (installed: " in option.stderr
    assert ".env" not in option.stderr and "DIGEST_BACKEND" not in option.stderr

    (tmp_path / ".env").write_text(SEND_SETTINGS + "DIGEST_BACKEND=nope\n", encoding="utf-8")
    setting = run_digest(*check, cwd=tmp_path)
    assert setting.returncode == 1
    assert ".env: DIGEST_BACKEND: unknown backend 'nope' (installed: " in setting.stderr
    assert "Traceback" not in option.stderr + setting.stderr


def test_a_list_of_only_invalid_rows_is_an_error_but_only_unsubscribed_is_fine(
    tmp_path: Path,
) -> None:
    (tmp_path / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    (tmp_path / ".env").write_text(SEND_SETTINGS, encoding="utf-8")
    (tmp_path / "broken.csv").write_text(
        "email,name\nnot-an-address,Ada\nalso@@wrong,Grace\n", encoding="utf-8"
    )
    (tmp_path / "left.csv").write_text(
        "email,status\nada@example.org,unsubscribed\ngrace@example.org,bounced\n",
        encoding="utf-8",
    )

    broken = run_digest("validate", "2026-03.yaml", "--subscribers", "broken.csv", cwd=tmp_path)
    assert broken.returncode == 1
    lines = broken.stderr.splitlines()
    assert "broken.csv: no usable subscriber row: all 2 rows are invalid" in lines, lines
    assert any(line.startswith("broken.csv:2:1: email:") for line in lines), lines

    left = run_digest("validate", "2026-03.yaml", "--subscribers", "left.csv", cwd=tmp_path)
    assert left.returncode == 0, left.stderr
    assert "left.csv: 2 rows: 0 to send, 1 bounced, 1 unsubscribed" in left.stdout


def test_a_secret_missing_or_left_as_in_env_example_says_how_to_make_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    (tmp_path / "subs.csv").write_text("email\nada@example.org\n", encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    # A curator's first .env: .env.example copied, only the backend changed.
    (tmp_path / ".env").write_text(example + "DIGEST_BACKEND=outbox\n", encoding="utf-8")
    copied = run_digest("validate", "2026-03.yaml", "--subscribers", "subs.csv", cwd=tmp_path)
    assert copied.returncode == 1
    assert copied.stderr.splitlines()[0] == (
        ".env: DIGEST_SECRET: still the example value of .env.example; set it to the output of "
        "`digest secret` (43 random characters)"
    )

    (tmp_path / ".env").write_text(
        SEND_SETTINGS.replace("DIGEST_SECRET=a-long-random-test-secret-for-tokens\n", ""),
        encoding="utf-8",
    )
    missing = run_digest("validate", "2026-03.yaml", "--subscribers", "subs.csv", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.startswith(
        ".env: DIGEST_SECRET: missing: it signs each recipient's unsubscribe link; set it to the "
        "output of `digest secret`"
    )


def test_a_mistyped_path_gets_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "content").mkdir()
    (tmp_path / "content" / "2026-04.yaml").write_bytes(BUNDLED.read_bytes())
    (tmp_path / ".env").write_text(SEND_SETTINGS, encoding="utf-8")
    (tmp_path / "subscribers.csv").write_text("email\nada@example.org\n", encoding="utf-8")
    edition = run_digest("validate", "content/2026-04.yml", cwd=tmp_path)
    assert edition.returncode == 1
    assert edition.stderr.splitlines() == [
        "content/2026-04.yml: no such file",
        "1 problem found.",
        "hint: did you mean content/2026-04.yaml?",
    ]
    csv = run_digest(
        "validate", "content/2026-04.yaml", "--subscribers", "subscriber.csv", cwd=tmp_path
    )
    assert csv.returncode == 1
    assert csv.stderr.splitlines()[0] == (
        "subscriber.csv: cannot read: no such file (did you mean subscribers.csv?)"
    )


def test_an_excel_export_with_an_e_mail_header_is_told_which_column_to_rename(
    tmp_path: Path,
) -> None:
    (tmp_path / "2026-03.yaml").write_bytes(BUNDLED.read_bytes())
    (tmp_path / ".env").write_text(SEND_SETTINGS, encoding="utf-8")
    # Excel's "CSV UTF-8" in a German locale: a BOM, semicolons, CRLF.
    (tmp_path / "export.csv").write_bytes(b"\xef\xbb\xbfE-mail;Name\r\nada@example.org;Ada\r\n")
    result = run_digest("validate", "2026-03.yaml", "--subscribers", "export.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        "export.csv:1:1: no `email` column in the header (found 'E-mail', 'Name'); "
        "rename the column 'E-mail' to email"
    )
    (tmp_path / "export.csv").write_bytes(b"\xef\xbb\xbfemail;Name\r\nada@example.org;Ada\r\n")
    fixed = run_digest("validate", "2026-03.yaml", "--subscribers", "export.csv", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
