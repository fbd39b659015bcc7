"""Template helpers for curators: `{% load curate %}{% if user|can_curate %}`."""

from django import template

from annotation.roles import is_curator

register = template.Library()


@register.filter
def can_curate(user: object) -> bool:
    """Whether the user may use /curate/ (the same check the pages make)."""
    return is_curator(user)
