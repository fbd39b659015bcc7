"""Researchers: applying for access, a curator's decision, and their API tokens.

A researcher applies with an affiliation and a purpose (ResearcherProfile, pending); a
curator approves (the user joins the researcher group, which holds the research API
permission) or rejects with a reason. Each decision writes one AuditEntry in the same
transaction as the state it explains.

Tokens: `odb_` and 43 random URL-safe characters. Only the SHA-256 of the secret is
stored, so a leaked database does not leak working tokens; the secret is shown to its
owner once, when it is made. `prefix` (the first PREFIX_CHARS) tells tokens apart.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation.models import ApiToken, AuditEntry, ResearcherProfile
from annotation.roles import RESEARCHER, USE_RESEARCH_API, role_group

TOKEN_PREFIX = "odb_"  # marks an Oddball research token, unlike a listener token
PREFIX_CHARS = 12  # "odb_" and 8 random characters, enough to tell one's tokens apart
TOKEN_TOUCH_S = 60  # last_used_at is written at most this often per token
MAX_TOKENS = 20  # live tokens per researcher
REASON_MAX = 500  # ResearcherProfile.reason's length


class ResearchError(Exception):
    """A request that cannot be granted as asked; the message is shown to the user."""


@dataclass
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Applications --------------------------------------------------------------------------------


def researcher_apply(user: AbstractBaseUser, affiliation: str, purpose: str) -> ResearcherProfile:
    """Apply (or apply again after a rejection) for researcher access; the application
    waits for a curator. ResearchError when one is already pending or approved."""
    affiliation, purpose = affiliation.strip(), purpose.strip()
    if not affiliation or not purpose:
        raise ResearchError("Give your affiliation and what you want the data for.")
    with transaction.atomic():
        profile = ResearcherProfile.objects.select_for_update().filter(user=user).first()
        if profile is None:
            return ResearcherProfile.objects.create(
                user=user, affiliation=affiliation[:200], purpose=purpose
            )
        if profile.status != ResearcherProfile.Status.REJECTED:
            raise ResearchError(f"Your application is already {profile.get_status_display()}.")
        profile.affiliation, profile.purpose = affiliation[:200], purpose
        profile.status = ResearcherProfile.Status.PENDING
        profile.decided_by, profile.decided_at, profile.reason = None, None, ""
        profile.save()
        return profile


def _decide(
    profile_id: int, actor: AbstractBaseUser, status: str, action: str, reason: str
) -> ResearcherProfile:
    with transaction.atomic():
        profile = ResearcherProfile.objects.select_for_update().filter(id=profile_id).first()
        if profile is None:
            raise ResearchError(f"No application {profile_id}.")
        if profile.status != ResearcherProfile.Status.PENDING:
            raise ResearchError(f"Application {profile_id} is {profile.status} already.")
        profile.status, profile.decided_by = status, actor
        profile.decided_at, profile.reason = timezone.now(), reason
        profile.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        if status == ResearcherProfile.Status.APPROVED:
            profile.user.groups.add(role_group(RESEARCHER))
        AuditEntry.objects.create(
            actor=actor,
            action=action,
            target_type="researcher",
            target_id=profile.id,
            reason=reason,
            data={"field": "status", "from": ResearcherProfile.Status.PENDING, "to": status},
        )
    return profile


def researcher_approve(
    profile_id: int, actor: AbstractBaseUser, reason: str = ""
) -> ResearcherProfile:
    """Approve a pending application: the user joins the researcher group (downloads and
    the research API). Writes an audit entry."""
    return _decide(
        profile_id,
        actor,
        ResearcherProfile.Status.APPROVED,
        "researcher_approve",
        reason.strip()[:REASON_MAX],
    )


def researcher_reject(profile_id: int, actor: AbstractBaseUser, reason: str) -> ResearcherProfile:
    """Reject a pending application with a reason the applicant sees. Writes an audit entry."""
    reason = reason.strip()[:REASON_MAX]
    if not reason:
        raise ResearchError(
            "Give a reason: the applicant sees it, and it is kept in the audit log."
        )
    return _decide(
        profile_id, actor, ResearcherProfile.Status.REJECTED, "researcher_reject", reason
    )


# Tokens --------------------------------------------------------------------------------------


def api_token_create(user: AbstractBaseUser, name: str) -> NewToken:
    """Make a token for a user who may use the research API. The secret is returned once."""
    name = name.strip()[:100]
    if not name:
        raise ResearchError("Name the token, e.g. after the machine or script that uses it.")
    if not (user.is_active and user.has_perm(USE_RESEARCH_API)):
        raise ResearchError("Only approved researchers can make API tokens.")
    if ApiToken.objects.filter(user=user, revoked_at=None).count() >= MAX_TOKENS:
        raise ResearchError(f"You have {MAX_TOKENS} live tokens; revoke one first.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[:PREFIX_CHARS], key_hash=_hash(secret)
    )
    return NewToken(token, secret)


def api_token_revoke(user: AbstractBaseUser, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens; it stops working at once. Idempotent."""
    token = ApiToken.objects.filter(user=user, id=token_id).first()
    if token is None:
        raise ResearchError("No such token.")
    ApiToken.objects.filter(id=token.id, revoked_at=None).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])
    return token


def api_token_authenticate(secret: str) -> ApiToken | None:
    """The live token with this secret, its user active and still allowed the research
    API; else None. Records the use at most once a TOKEN_TOUCH_S (a conditional UPDATE,
    so concurrent requests write once)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_hash(secret), revoked_at=None)
        .first()
    )
    if token is None or not token.user.is_active or not token.user.has_perm(USE_RESEARCH_API):
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= timedelta(seconds=TOKEN_TOUCH_S):
        ApiToken.objects.filter(id=token.id, last_used_at=token.last_used_at).update(
            last_used_at=now
        )
        token.last_used_at = now
    return token
