"""click callbacks for options more than one command takes."""

from __future__ import annotations

import click


def backend_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """click callback for ``--backend``: an installed backend's name, else a usage error (exit 2).

    Like :class:`click.Choice`, but the choices are the ``digest.backends`` entry points, so a
    plug-in backend of another package is accepted too. A wrong ``DIGEST_BACKEND`` is not a
    usage error: the send checks report it as a setting (exit 1).
    """
    if value is None:
        return None
    from digest.backends.base import backend_names  # only when the option is given

    installed = backend_names()
    if value not in installed:
        known = ", ".join(installed) or "none"
        raise click.BadParameter(f"unknown backend {value!r} (installed: {known})")
    return value
