"""``digest unsubscribe ADDRESS|TOKEN``: unsubscribe someone by hand (a reply asking for it)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import click

from digest.audience.suppressions import SuppressionStore
from digest.cli import cli
from digest.cli.output import out, print_already_suppressed
from digest.errors import ConfigError
from digest.settings import Settings, load_settings
from digest.tokens import TOKEN_SHAPE, verify_token


@cli.command()
@click.argument("target", metavar="ADDRESS|TOKEN")
def unsubscribe(target: str) -> int:
    """Never mail this person again (reason: unsubscribed).

    ADDRESS|TOKEN is an email address, or the token (or the whole unsubscribe link) of one of
    our emails, which is verified with DIGEST_SECRET first.

    \b
    Examples:
      digest unsubscribe ada@example.org
      digest unsubscribe 'https://example.org/unsubscribe/v2-Qm9h...'
    """
    settings = load_settings()
    target = target.strip()
    slug: str | None = None
    if "@" in target and not target.lower().startswith(("http://", "https://")):
        address, source = target, "cli"
    else:
        claims = verify_token(_secret(settings), _token_in(target, settings))
        if claims.proof:
            out.print(
                f"This link is from a test copy (--test) of {claims.slug}: nobody unsubscribed.",
                markup=False,
            )
            return 0
        address, slug, source = claims.address, claims.slug, "cli-token"
    with SuppressionStore(settings.state_dir) as store:
        if store.add(address, "unsubscribed", source, slug=slug):
            edition = f" (edition {slug})" if slug else ""
            out.print(f"Unsubscribed {address}{edition}.", markup=False)
        else:
            print_already_suppressed(store, address)
    return 0


def _secret(settings: Settings) -> str:
    settings.require("DIGEST_SECRET")
    assert settings.secret is not None
    return settings.secret.get_secret_value()


def _token_in(target: str, settings: Settings) -> str:
    """The token itself, or the one inside an unsubscribe link."""
    if not target.lower().startswith(("http://", "https://")):
        if not TOKEN_SHAPE.match(target):
            raise click.BadParameter(
                "neither an email address nor an unsubscribe token", param_hint="ADDRESS|TOKEN"
            )
        return target
    parts = urlsplit(target)
    template = settings.unsubscribe_url or ""
    if "{token}" in urlsplit(template).query:
        for name, values in parse_qs(urlsplit(template).query).items():
            if "{token}" in values:
                found = parse_qs(parts.query).get(name)
                if found:
                    return found[0]
        raise ConfigError("this link carries no token where DIGEST_UNSUBSCRIBE_URL puts it")
    for segment in reversed(parts.path.split("/")):
        if TOKEN_SHAPE.match(segment):
            return segment
    raise click.BadParameter("this link holds no unsubscribe token", param_hint="ADDRESS|TOKEN")
