"""``digest secret``: print a strong DIGEST_SECRET."""

from __future__ import annotations

from digest.cli import cli
from digest.cli.output import out
from digest.tokens import MIN_SECRET_LENGTH, new_secret


@cli.command()
def secret() -> int:
    """Print a new random DIGEST_SECRET (43 characters, 256 bits).

    DIGEST_SECRET seals the unsubscribe links; validate --subscribers, send and
    serve-unsubscribe refuse one shorter than 32 characters or still the example of .env.example.
    Changing it makes the links already mailed invalid: set it once.

    \b
    Example:
      echo "DIGEST_SECRET=$(digest secret)" >> .env
    """
    value = new_secret()
    assert len(value) >= MIN_SECRET_LENGTH
    out.print(value, markup=False, soft_wrap=True)
    return 0
