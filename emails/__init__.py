"""Email templates (templates/<kind>/{subject.txt, body.txt, body.html}) and their rendering."""

from emails.rendering import RenderedEmail, UnknownEmailKind, render

__all__ = ["RenderedEmail", "UnknownEmailKind", "render"]
