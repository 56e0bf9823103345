"""Email templates (templates/<kind>/{subject.txt, body.txt, body.html}) and their rendering."""

from emails.rendering import RenderedEmail, UnknownEmailKind, render, render_page

__all__ = ["RenderedEmail", "UnknownEmailKind", "render", "render_page"]
