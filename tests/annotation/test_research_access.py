"""Researcher access: applying, a curator's decision, API tokens and their authentication."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotation import research, roles
from annotation.models import ApiToken, AuditEntry, ResearcherProfile
from tests.factories import user_make

pytestmark = pytest.mark.django_db


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def researcher_with_token() -> tuple[object, str]:
    user = user_make(roles.RESEARCHER)
    return user, research.api_token_create(user, "laptop").secret


# Applying and deciding -----------------------------------------------------------------------


def test_a_visitor_applies_and_gets_an_account_in_one_form(client):
    response = client.post(
        "/research/apply/",
        {
            "username": "ada",
            "password1": "a-long-enough-pass-99",
            "password2": "a-long-enough-pass-99",
            "affiliation": "Analytical Engines Ltd",
            "purpose": "Timbre similarity for a music player.",
        },
    )
    assert response.status_code == 302 and response.url == "/research/"
    profile = ResearcherProfile.objects.get(user__username="ada")
    assert profile.status == ResearcherProfile.Status.PENDING
    assert "Awaiting a curator" in client.get("/research/").content.decode()


def test_an_application_without_a_purpose_is_refused_with_a_reason(client):
    client.force_login(user_make())
    response = client.post("/research/apply/", {"affiliation": "Uni", "purpose": ""})
    assert response.status_code == 400
    assert ResearcherProfile.objects.count() == 0


def test_a_curator_approves_and_the_user_becomes_a_researcher(client):
    applicant = user_make()
    profile = research.researcher_apply(applicant, "Uni", "Study")
    curator = user_make(roles.CURATOR)
    client.force_login(curator)
    assert "Study" in client.get("/curate/researchers/").content.decode()
    response = client.post(
        f"/curate/researchers/{profile.id}/decide/", {"decision": "approve", "reason": "ok"}
    )
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.status == ResearcherProfile.Status.APPROVED and profile.decided_by == curator
    applicant = get_user_model().objects.get(id=applicant.id)  # fresh permission cache
    assert applicant.has_perm(roles.USE_RESEARCH_API)
    entry = AuditEntry.objects.get(target_type="researcher", target_id=profile.id)
    assert (entry.action, entry.actor, entry.reason) == ("researcher_approve", curator, "ok")


def test_a_rejection_needs_a_reason_which_the_applicant_then_sees(client):
    applicant = user_make()
    profile = research.researcher_apply(applicant, "Uni", "Study")
    curator = user_make(roles.CURATOR)
    with pytest.raises(research.ResearchError):
        research.researcher_reject(profile.id, curator, "  ")
    research.researcher_reject(profile.id, curator, "Tell us more about the study.")
    assert AuditEntry.objects.filter(action="researcher_reject", target_id=profile.id).count() == 1
    client.force_login(applicant)
    page = client.get("/research/").content.decode()
    assert "Tell us more about the study." in page and "Apply again" in page
    assert not get_user_model().objects.get(id=applicant.id).has_perm(roles.USE_RESEARCH_API)


def test_a_rejected_applicant_may_apply_again_but_a_pending_one_may_not():
    applicant, curator = user_make(), user_make(roles.CURATOR)
    profile = research.researcher_apply(applicant, "Uni", "Study")
    with pytest.raises(research.ResearchError):
        research.researcher_apply(applicant, "Uni", "Study again")
    research.researcher_reject(profile.id, curator, "Too vague.")
    again = research.researcher_apply(applicant, "Uni", "A clear study plan.")
    assert again.id == profile.id and again.status == ResearcherProfile.Status.PENDING
    assert again.reason == "" and again.decided_by is None


def test_an_application_is_decided_once():
    profile = research.researcher_apply(user_make(), "Uni", "Study")
    curator = user_make(roles.CURATOR)
    research.researcher_approve(profile.id, curator)
    with pytest.raises(research.ResearchError):
        research.researcher_reject(profile.id, curator, "changed my mind")
    assert AuditEntry.objects.filter(target_type="researcher").count() == 1


# Tokens --------------------------------------------------------------------------------------


def test_a_new_token_is_shown_once_and_only_its_hash_is_stored(client):
    user = user_make(roles.RESEARCHER)
    client.force_login(user)
    response = client.post("/research/tokens/", {"name": "laptop"})
    assert response.status_code == 200
    secret = response.context["new_token"].secret
    assert secret.startswith("odb_") and secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get(user=user)
    assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:12] and secret not in str(token.__dict__)
    listing = client.get("/research/").content.decode()
    assert token.prefix in listing and secret not in listing


def test_only_approved_researchers_make_tokens(client):
    client.force_login(user_make())
    assert client.post("/research/tokens/", {"name": "laptop"}).status_code == 400
    assert ApiToken.objects.count() == 0


def test_a_token_opens_the_research_api_and_a_revoked_one_stops_at_once(client):
    user, secret = researcher_with_token()
    assert client.get("/api/v1/tracks/", headers=bearer(secret)).status_code == 200
    token = ApiToken.objects.get(user=user)
    client.force_login(user)
    client.post(f"/research/tokens/{token.id}/revoke/")
    client.logout()
    refused = client.get("/api/v1/tracks/", headers=bearer(secret))
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"


def test_a_researcher_cannot_revoke_another_researchers_token(client):
    owner, _secret = researcher_with_token()
    client.force_login(user_make(roles.RESEARCHER))
    client.post(f"/research/tokens/{ApiToken.objects.get(user=owner).id}/revoke/")
    assert ApiToken.objects.get(user=owner).revoked_at is None


def test_a_token_stops_working_when_its_user_loses_the_role_or_is_deactivated(client):
    user, secret = researcher_with_token()
    user.groups.clear()
    assert client.get("/api/v1/tracks/", headers=bearer(secret)).status_code == 401
    user.groups.add(roles.role_group(roles.RESEARCHER))
    assert client.get("/api/v1/tracks/", headers=bearer(secret)).status_code == 200
    user.is_active = False
    user.save()
    assert client.get("/api/v1/tracks/", headers=bearer(secret)).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer odb_not-a-real-token", "Bearer abc", "Token odb_x", "Listener odb_x"],
)
def test_unknown_or_misaddressed_tokens_are_refused_with_a_reason(client, header):
    response = client.get("/api/v1/tracks/", headers={"Authorization": header})
    assert response.status_code == 401
    body = response.json()
    assert body["detail"] and body["code"]


def test_last_use_is_written_at_most_once_a_minute(client):
    user, secret = researcher_with_token()
    client.get("/api/v1/models/", headers=bearer(secret))
    token = ApiToken.objects.get(user=user)
    first = token.last_used_at
    assert first is not None
    client.get("/api/v1/models/", headers=bearer(secret))
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(id=token.id).update(last_used_at=first - timedelta(minutes=2))
    client.get("/api/v1/models/", headers=bearer(secret))
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(seconds=1)
    assert timezone.now() - token.last_used_at < timedelta(seconds=30)


def test_a_researcher_may_hold_only_so_many_live_tokens():
    user = user_make(roles.RESEARCHER)
    for n in range(research.MAX_TOKENS):
        research.api_token_create(user, f"t{n}")
    with pytest.raises(research.ResearchError):
        research.api_token_create(user, "one more")
