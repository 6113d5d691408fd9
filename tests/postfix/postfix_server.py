"""A real Postfix for tests: its own config folder, queue and Maildirs, on 127.0.0.1 only.

Started as root with ``postfix -c DIR start`` (the Debian package's binaries, "No configuration":
nothing else of the system's mail set-up is used or changed); a user with password-less sudo (a
CI runner) gets the same through ``sudo -n``. It listens on two free high ports:

* ``port``: STARTTLS offered with a certificate of a CA made by the test (trusted by digest only
  through SMTP_CA_FILE);
* ``limited_port``: the same, with ``smtpd_client_message_rate_limit`` (anvil) so a fast sender
  meets Postfix's own ``450 4.7.1 Error: too much mail from 127.0.0.1``.

Mail for the domain goes to virtual Maildirs (``maildir(name)``); unknown local users are
accepted, then bounced by Postfix's virtual agent with its own DSN to the envelope sender;
``default_transport = error`` so nothing can ever leave the machine. ``stop()`` stops Postfix
and waits until its master process is gone (also after a failed start).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{limited_port} inet n - n - - smtpd
  -o smtpd_client_message_rate_limit={rate_limit}
  -o smtpd_client_event_limit_exceptions=
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# Nothing leaves this machine: any other destination bounces at once.
default_transport = error:this test server delivers nowhere else
relay_transport = error:this test server delivers nowhere else
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/conf/mailboxes
virtual_uid_maps = static:{mail_uid}
virtual_gid_maps = static:{mail_gid}
recipient_delimiter = +
# Accept unknown users, then bounce them with a DSN: the asynchronous bounces under test.
smtpd_reject_unlisted_recipient = no
alias_maps =
alias_database =
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert_file}
smtpd_tls_key_file = {key_file}
anvil_rate_time_unit = {rate_unit}s
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
"""


def privileged() -> list[str]:
    """The prefix that runs a command as root: nothing for root, else password-less sudo."""
    return [] if os.geteuid() == 0 else ["sudo", "-n"]


def can_run_postfix() -> str | None:
    """None when Postfix can be started here, else why not."""
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
        return "Postfix is not installed (scripts/test.sh installs it)"
    if os.geteuid() != 0:
        probe = subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=30)
        if probe.returncode != 0:
            return "starting Postfix needs root or password-less sudo"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostfixServer:
    def __init__(
        self,
        *,
        domain: str,
        mailboxes: list[str],
        cert_file: Path,
        key_file: Path,
        rate_limit: int = 10,
        rate_unit_seconds: int = 4,
    ) -> None:
        # Not under pytest's basetemp (0700): Postfix's unprivileged daemons must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="digest-postfix-"))
        self.root.chmod(0o755)
        self.domain = domain
        self.port = free_port()
        self.limited_port = free_port()
        self.rate_limit = rate_limit
        self.conf = self.root / "conf"
        for folder in ("conf", "queue", "data", "mail"):
            (self.root / folder).mkdir()
        subprocess.run([*privileged(), "chown", "postfix", str(self.root / "data")], check=True)
        # Maildirs owned by the user running the tests (nobody when that is root: Postfix's
        # virtual agent never delivers as root), so the tests can read what was delivered.
        mail_uid, mail_gid = (os.getuid(), os.getgid()) if os.geteuid() else (65534, 65534)
        os.chown(self.root / "mail", mail_uid, mail_gid)
        (self.conf / "mailboxes").write_text(
            "".join(f"{name}@{domain} {name}/\n" for name in mailboxes)
        )
        (self.conf / "master.cf").write_text(
            MASTER_CF.format(port=self.port, limited_port=self.limited_port, rate_limit=rate_limit)
        )
        (self.conf / "main.cf").write_text(
            MAIN_CF.format(
                root=self.root,
                domain=domain,
                cert_file=cert_file,
                key_file=key_file,
                rate_unit=rate_unit_seconds,
                mail_uid=mail_uid,
                mail_gid=mail_gid,
            )
        )

    # -- life cycle -------------------------------------------------------------------------

    def _postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*privileged(), "postfix", "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self) -> PostfixServer:
        started = self._postfix("start")
        if started.returncode != 0:
            self.stop()
            raise RuntimeError(f"postfix did not start:\n{started.stderr}\n{self.log()}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postfix does not listen on {self.port}:\n{self.log()}")

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "queue" / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop Postfix, wait for its master to go, remove every file it had."""
        pid = self.master_pid()
        self._postfix("stop")
        deadline = time.monotonic() + 15
        while pid is not None and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid is not None and _alive(pid):
            self._postfix("abort")
            # The master this fixture started, by its pid.
            subprocess.run([*privileged(), "kill", "-KILL", str(pid)], capture_output=True)
        # The queue belongs to root and postfix: removed with the same rights.
        subprocess.run([*privileged(), "rm", "-rf", str(self.root)], capture_output=True)

    # -- what tests read --------------------------------------------------------------------

    def maildir(self, name: str) -> Path:
        return self.root / "mail" / name

    def messages(self, name: str) -> list[bytes]:
        folder = self.maildir(name)
        return [path.read_bytes() for path in sorted(folder.glob("new/*"))] + [
            path.read_bytes() for path in sorted(folder.glob("cur/*"))
        ]

    def queue_is_empty(self) -> bool:
        listing = subprocess.run(
            [*privileged(), "postqueue", "-c", str(self.conf), "-j"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return listing.returncode == 0 and not listing.stdout.strip()

    def wait_until(self, condition: object, timeout: float = 30.0) -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"Postfix did not get there in {timeout} s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        try:
            return (self.root / "maillog").read_text(errors="replace")
        except OSError:
            return "(no maillog)"


def _alive(pid: int) -> bool:
    if not Path(f"/proc/{pid}").exists():
        return False
    # A zombie (our child's child, not yet reaped) is as good as gone.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return status != "Z"
