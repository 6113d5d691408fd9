"""URLs as the curator gives them: which may be fetched, which are arXiv papers, and one
normal form so that the same page linked two ways is known as already featured."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that track a click and never change the page.
_TRACKING = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "msclkid",
        "yclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "ref_src",
        "ref_url",
        "spm",
        "si",
    }
)
_TRACKING_PREFIXES = ("utm_", "pk_", "ga_")

# New-style ids (2601.07372, 2601.07372v2) and old-style ones (hep-th/9901001v1).
_NEW_ID = r"\d{4}\.\d{4,5}(?:v\d+)?"
_OLD_ID = r"[a-z-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?"
_BARE_ID = re.compile(rf"^(?:arxiv:)?({_NEW_ID}|{_OLD_ID})$", re.IGNORECASE)
_ARXIV_PATH = re.compile(rf"^/(?:abs|pdf|html)/({_NEW_ID}|{_OLD_ID})(?:\.pdf)?/?$")
_ARXIV_HOSTS = frozenset({"arxiv.org", "www.arxiv.org", "export.arxiv.org"})
_VERSION = re.compile(r"v\d+$")


def fetch_problem(url: str) -> str | None:
    """Why ``url`` may not be fetched, or None: http and https only, a host, no credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "none"
        return f"only http and https addresses are fetched (scheme: {scheme})"
    if parts.username is not None or parts.password is not None:
        return "holds a user name or password; remove the credentials from the address"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        return "holds spaces or control characters"
    return None


def arxiv_id(text: str) -> str | None:
    """The arXiv id of a bare id (``2601.07372``, ``arXiv:2601.07372``) or of an arXiv
    abstract, PDF or HTML address; None for anything else."""
    text = text.strip()
    bare = _BARE_ID.match(text)
    if bare:
        return bare.group(1)
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or parts.hostname not in _ARXIV_HOSTS:
        return None
    path = _ARXIV_PATH.match(parts.path)
    return path.group(1) if path else None


def without_version(paper: str) -> str:
    """``2601.07372v2`` -> ``2601.07372``: every version is the same paper."""
    return _VERSION.sub("", paper)


def arxiv_abs_url(paper: str) -> str:
    return f"https://arxiv.org/abs/{paper}"


def normalise(url: str) -> str:
    """The form two links to one page share: no scheme, no ``www.``, lower-case host, no
    default port, fragment or trailing slash, tracking parameters dropped, the others sorted.
    Every address of an arXiv paper (abstract, PDF, any version) becomes one."""
    paper = arxiv_id(url)
    if paper is not None:
        return f"arxiv.org/abs/{without_version(paper).lower()}"
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip()
    host = host.removeprefix("www.")
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    query = sorted(
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _TRACKING and not key.lower().startswith(_TRACKING_PREFIXES)
    )
    path = parts.path.rstrip("/")
    return urlunsplit(("", host, path, urlencode(query), "")).removeprefix("//")


__all__ = ["arxiv_abs_url", "arxiv_id", "fetch_problem", "normalise", "without_version"]
