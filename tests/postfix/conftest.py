"""The real-Postfix suite's fixtures: a Postfix started for this module, and digest run as the
curator runs it (the installed ``digest`` command, in its own working folder)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import SETTING_PREFIXES, SMALL_EDITION
from tls_certs import make_certificates

from postfix.postfix_server import PostfixServer, can_run_postfix

DOMAIN = "example.org"
READERS = [f"reader{n:02d}" for n in range(20)]
UNKNOWN = ["ghost1", "ghost2", "ghost3"]  # not mailboxes: Postfix bounces them
SLOW_READERS = [f"slow{n:02d}" for n in range(30)]  # the rate-limited send
MAILBOXES = [*READERS, *SLOW_READERS, "bounces", "proof"]
SECRET = "postfix-suite-secret-3f9a1c7e5b2d4f6a"
DIGEST = Path(sys.executable).with_name("digest")


@dataclass
class Workspace:
    """The curator's working folder: editions, lists, keys, and the settings of a send."""

    folder: Path
    env: dict[str, str] = field(default_factory=dict)

    def digest(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
        environ.pop("SSL_CERT_FILE", None)
        environ.update(self.env)
        environ.update(extra_env)
        environ["NO_COLOR"] = "1"
        return subprocess.run(
            [str(DIGEST), *args],
            cwd=self.folder,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="package")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    folder = tmp_path_factory.mktemp("curator")
    content = folder / "content"
    content.mkdir()
    edition = textwrap.dedent(SMALL_EDITION)
    (content / "2026-03.yaml").write_text(edition)
    (content / "2026-04.yaml").write_text(edition.replace("slug: 2026-03", "slug: 2026-04"))
    rows = ["email,name"] + [f"{name}@{DOMAIN},{name.title()}" for name in READERS + UNKNOWN]
    (folder / "subscribers.csv").write_text("\n".join(rows) + "\n")
    slow = ["email,name"] + [f"{name}@{DOMAIN},{name.title()}" for name in SLOW_READERS]
    (folder / "slow.csv").write_text("\n".join(slow) + "\n")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True,
                   capture_output=True)  # fmt: skip
    return Workspace(
        folder,
        {
            "DIGEST_FROM": f"Clippings <news@{DOMAIN}>",
            "DIGEST_SECRET": SECRET,
            "DIGEST_UNSUBSCRIBE_URL": "https://example.org/unsubscribe/{token}",
            "DIGEST_STATE_DIR": str(folder / ".digest"),
            "DIGEST_BACKEND": "smtp",
            "DIGEST_BOUNCE_ADDRESS": f"bounces@{DOMAIN}",
            "DIGEST_VERP": "yes",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_SECURITY": "starttls",
            "SMTP_HELO_NAME": "sender.example.org",
            "SMTP_TIMEOUT": "10",
            "DKIM_DOMAIN": DOMAIN,
            "DKIM_SELECTOR": "news2026",
            "DKIM_PRIVATE_KEY_FILE": str(key),
        },
    )


@pytest.fixture(scope="package")
def postfix(
    workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostfixServer]:
    if (reason := can_run_postfix()) is not None:
        # A developer's machine may lack it; CI (.ci/run, as root) must not pass without it.
        if os.environ.get("CI"):
            pytest.fail(f"the real-Postfix suite cannot run: {reason}")
        pytest.skip(reason)
    certificates = make_certificates(tmp_path_factory.mktemp("postfix-tls"))
    server = PostfixServer(
        domain=DOMAIN,
        mailboxes=MAILBOXES,
        cert_file=certificates.cert_file,
        key_file=certificates.key_file,
    )
    try:
        server.start()
        workspace.env["SMTP_PORT"] = str(server.port)
        workspace.env["SMTP_CA_FILE"] = str(certificates.ca_file)
        yield server
    finally:
        server.stop()
