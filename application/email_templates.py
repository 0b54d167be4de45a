"""Renders the HTML and plain-text parts of every email from Jinja2 templates.

One environment for all mail (digests, sign-off packages) so preview and send share one code
path. HTML templates (`*.html.j2`) are autoescaped: user text (titles, reasons, names) can
never become markup; never mark user text `|safe`. Text templates (`*.txt.j2`) render raw.
Undefined variables raise, so a template and its caller cannot silently drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATE_DIR = Path(__file__).parent / "templates" / "email"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """The two bodies of one email."""

    text: str
    html: str


@cache
def environment() -> Environment:
    """The one template environment (built once per process)."""
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        # `select_autoescape(["html"])` matches names ending in ".html" only: the ".html.j2"
        # suffix must be listed or nothing would be escaped.
        autoescape=select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=True, default=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(name: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render `<name>.txt.j2` and `<name>.html.j2` with the same context."""
    env = environment()
    return RenderedEmail(
        text=env.get_template(f"{name}.txt.j2").render(context),
        html=env.get_template(f"{name}.html.j2").render(context),
    )


def render_html(name: str, context: Mapping[str, Any]) -> str:
    """Render one HTML template (a page that is not an email: the sign-off package)."""
    return environment().get_template(f"{name}.html.j2").render(context)
