"""Where the email templates are: a module of its own, light (no Jinja, MJML or premailer), so
a send can hash the templates for its rendered-edition cache without importing the renderer."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"


def default_templates_dir() -> Path:
    """``./email_templates`` when the working folder has one (a curator's own, e.g. from
    ``digest templates export``), else the defaults shipped inside the package."""
    local = Path("email_templates")
    if (local / HTML_TEMPLATE).is_file():
        return local.resolve()
    return packaged_templates_dir()


def packaged_templates_dir() -> Path:
    """The default templates, shipped in the package (so an installed wheel can render)."""
    # The package is installed as plain files (setuptools, never zipped), so this is a real path.
    return Path(str(resources.files("digest.render") / "templates"))
