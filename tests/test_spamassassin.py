"""SpamAssassin's verdict on the bundled edition as it leaves `digest send --dry-run`.

Debian's spamassassin with its local rules only (``-L``: no DNS blocklists, no network), in test
mode (``-t``: the report is appended), with a throw-away home folder so it never reads or writes
the developer's ``~/.spamassassin``. Missing, it skips on a developer's machine and fails in CI
(``CI`` set), so CI cannot pass without having scored the message.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPAMASSASSIN = shutil.which("spamassassin") or "/usr/bin/spamassassin"
MAX_SCORE = 0.5


def spamassassin_report(message: bytes, home: Path) -> tuple[float, set[str]]:
    """The score and the names of the rules that hit, from ``spamassassin -L -t``."""
    if not Path(SPAMASSASSIN).exists():
        if os.environ.get("CI"):
            pytest.fail("spamassassin is missing: scripts/test.sh installs Debian's spamassassin")
        pytest.skip("Debian's spamassassin is not installed (apt-get install spamassassin)")
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        [SPAMASSASSIN, "-L", "-t", "-x"],
        input=message,
        capture_output=True,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"},
        timeout=120,
        check=False,
    )
    report = result.stdout.decode("utf-8", "replace")
    found = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.M)
    assert found, f"no X-Spam-Status in spamassassin's output: {result.stderr[-500:]!r}"
    details = report[report.index("Content analysis details:") :]
    rules = set(re.findall(r"^\s*-?[\d.]+\s+([A-Z0-9_]+)\s", details, re.M))
    return float(found.group(1)), rules


def test_bundled_edition_scores_low_in_spamassassin(run_digest, send_env, tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    shutil.copy(REPO / "content" / "2026-03.yaml", content / "2026-03.yaml")
    shutil.copy(REPO / "digest.toml", tmp_path / "digest.toml")
    (tmp_path / "subscribers.csv").write_text("email,name\nada@example.org,Ada\n", "utf-8")
    result = run_digest(
        "send",
        "content/2026-03.yaml",
        "--subscribers",
        "subscribers.csv",
        "--dry-run",
        "--yes",
        env={**send_env, "DIGEST_ARCHIVE_URL": "https://clippings.example.org/{slug}/"},
    )
    assert result.exit_code == 0, result.output
    (message,) = (tmp_path / "outbox" / "2026-03").glob("*.eml")

    raw = message.read_bytes()
    score, rules = spamassassin_report(raw, tmp_path / "sa-home")
    # The hidden preheader is neither white-on-white nor 1 px text.
    assert not {rule for rule in rules if "LOW_CONTRAST" in rule or "INVIS" in rule}
    assert score < MAX_SCORE, f"score {score} with {sorted(rules)}"

    # Some rules are waived for quoted-printable bodies only: the same message in base64 (as
    # another relay or provider may re-encode it) must score as low.
    score, rules = spamassassin_report(as_base64(raw), tmp_path / "sa-home")
    assert score < MAX_SCORE, f"base64: score {score} with {sorted(rules)}"


def as_base64(raw: bytes) -> bytes:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.get_content_maintype() == "text":
            subtype = part.get_content_subtype()
            part.set_content(part.get_content(), subtype=subtype, cte="base64")
    assert b"Content-Transfer-Encoding: base64" in message.as_bytes()
    return message.as_bytes()
