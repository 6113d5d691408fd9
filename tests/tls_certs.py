"""A private CA and a server certificate for 127.0.0.1, made with the openssl command line.

What an operator's staging server or company relay has: a certificate no public CA signed. The
tests trust it only through SMTP_CA_FILE, as a curator would.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerCertificates:
    ca_file: Path  # the CA's certificate: what SMTP_CA_FILE names
    cert_file: Path  # the server's certificate (signed by the CA)
    key_file: Path  # the server's key


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certificates(folder: Path, host_name: str = "localhost") -> ServerCertificates:
    """A CA and a server certificate valid for ``host_name`` and 127.0.0.1 (EC keys: fast)."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=digest test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", f"/CN={host_name}", cwd=folder,
    )  # fmt: skip
    (folder / "server.ext").write_text(
        f"subjectAltName=DNS:{host_name},IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
        cwd=folder,
    )  # fmt: skip
    for key in ("ca.key", "server.key"):
        (folder / key).chmod(0o644)  # Postfix's smtpd reads it after dropping privileges
    return ServerCertificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
