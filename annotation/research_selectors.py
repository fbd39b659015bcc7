"""Reads for researchers: what the research API shows, and the researcher pages."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Prefetch, QuerySet

from annotation.models import ApiToken, ResearcherProfile
from embeddings.models import Embedding, Snippet, Track


def tracks_public(
    source: str = "", license: str = "", split: str = "", genre: str = ""
) -> QuerySet[Track]:
    """Approved, visible tracks (the same rule as embeddings.selectors.track_public),
    filtered by the fields given; in id order for stable pages."""
    tracks = Track.objects.filter(status=Track.Status.APPROVED, hidden=False)
    filters = {"source": source, "license": license, "split": split, "genre": genre}
    return tracks.filter(**{k: v for k, v in filters.items() if v}).order_by("id")


def _snippets_public() -> QuerySet[Snippet]:
    return Snippet.objects.filter(hidden=False).order_by("position")


def track_public_with_snippets(track_id: int) -> Track | None:
    """A public track with its visible snippets prefetched, or None."""
    prefetch = Prefetch("snippets", queryset=_snippets_public(), to_attr="public_snippets")
    return tracks_public().filter(id=track_id).prefetch_related(prefetch).first()


def snippet_public(snippet_id: int) -> Snippet | None:
    """A visible snippet of a public track, or None."""
    return (
        _snippets_public()
        .filter(id=snippet_id, track__in=tracks_public())
        .select_related("track")
        .first()
    )


def snippet_spaces(snippet: Snippet) -> list[str]:
    return sorted(Embedding.objects.filter(snippet=snippet).values_list("space", flat=True))


def snippet_embedding(snippet: Snippet, space: str) -> Embedding | None:
    return Embedding.objects.filter(snippet=snippet, space=space).first()


def researcher_profile(user: AbstractBaseUser) -> ResearcherProfile | None:
    return ResearcherProfile.objects.filter(user=user).first()


def api_tokens(user: AbstractBaseUser) -> list[ApiToken]:
    """The user's tokens, live ones first, newest first."""
    return list(
        ApiToken.objects.filter(user=user).order_by(
            F("revoked_at").asc(nulls_first=True), "-created_at"
        )
    )


def applications(status: str) -> QuerySet[ResearcherProfile]:
    return (
        ResearcherProfile.objects.filter(status=status)
        .select_related("user", "decided_by")
        .order_by("created_at" if status == ResearcherProfile.Status.PENDING else "-decided_at")
    )
