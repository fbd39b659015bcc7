"""Researcher pages: applying for access (/research/apply/, which also makes an account
for a visitor without one), the researcher's own page with their API tokens (/research/),
and the curators' queue of applications (/curate/researchers/).

Researcher pages are wrapped for translation; the curators' page is English, like the
rest of /curate/. A token's secret is rendered once, in the response to the POST that
made it, and never stored or put in a redirect.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from annotation import research, research_selectors
from annotation.models import ResearcherProfile
from annotation.roles import USE_RESEARCH_API, curator_required


class ApplyForm(forms.Form):
    affiliation = forms.CharField(
        label=gettext_lazy("Affiliation"),
        max_length=200,
        help_text=gettext_lazy("Your university, lab, company, or “independent”."),
    )
    purpose = forms.CharField(
        label=gettext_lazy("What you want the data for"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Token name"),
        max_length=100,
        help_text=gettext_lazy("Where it will be used, e.g. “laptop” or “training script”."),
    )


def _page(request: HttpRequest, status: int = 200, **extra: object) -> HttpResponse:
    user = request.user
    context = {
        "profile": research_selectors.researcher_profile(user),
        "approved": user.has_perm(USE_RESEARCH_API),
        "tokens": research_selectors.api_tokens(user),
        "token_form": TokenForm(),
        **extra,
    }
    return render(request, "annotation/research.html", context, status=status)


@login_required
def research_home(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_http_methods(["GET", "POST"])
def research_apply(request: HttpRequest) -> HttpResponse:
    """Apply for researcher access; a visitor without an account makes one here too."""
    signed_in = request.user.is_authenticated
    profile = research_selectors.researcher_profile(request.user) if signed_in else None
    if profile is not None and profile.status != ResearcherProfile.Status.REJECTED:
        return redirect("research")
    data = request.POST if request.method == "POST" else None
    account = None if signed_in else UserCreationForm(data)
    form = ApplyForm(data)
    if data is not None and form.is_valid() and (account is None or account.is_valid()):
        try:
            with transaction.atomic():
                user = request.user if account is None else account.save()
                research.researcher_apply(
                    user, form.cleaned_data["affiliation"], form.cleaned_data["purpose"]
                )
        except research.ResearchError as e:
            form.add_error(None, str(e))
        else:
            if account is not None:
                login(request, user)
            messages.success(request, _("Thank you. A curator will look at your application."))
            return redirect("research")
    context = {"form": form, "account": account}
    status = 400 if form.errors or (account is not None and account.errors) else 200
    return render(request, "registration/researcher_apply.html", context, status=status)


@never_cache  # the answer shows the new secret: no cache may keep it
@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, status=400, token_form=form)
    try:
        new = research.api_token_create(request.user, form.cleaned_data["name"])
    except research.ResearchError as e:
        form.add_error(None, str(e))
        return _page(request, status=400, token_form=form)
    return _page(request, new_token=new)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = research.api_token_revoke(request.user, token_id)
    except research.ResearchError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("Token %(prefix)s… is revoked.") % {"prefix": token.prefix})
    return redirect("research")


# Curators ------------------------------------------------------------------------------------


@curator_required
def curate_researchers(request: HttpRequest) -> HttpResponse:
    context = {
        "pending": research_selectors.applications(ResearcherProfile.Status.PENDING),
        "decided": research_selectors.applications(ResearcherProfile.Status.APPROVED)[:20],
        "rejected": research_selectors.applications(ResearcherProfile.Status.REJECTED)[:20],
    }
    return render(request, "curate/researchers.html", context)


@curator_required
@require_POST
def curate_researcher_decide(request: HttpRequest, profile_id: int) -> HttpResponse:
    """Approve or reject one application, with the curator's reason."""
    decision, reason = request.POST.get("decision", ""), request.POST.get("reason", "")
    try:
        if decision == "approve":
            research.researcher_approve(profile_id, request.user, reason)
            messages.success(request, f"Approved application {profile_id}.")
        elif decision == "reject":
            research.researcher_reject(profile_id, request.user, reason)
            messages.success(request, f"Rejected application {profile_id}.")
        else:
            messages.error(request, f"Unknown decision {decision!r}.")
    except research.ResearchError as e:
        messages.error(request, str(e))
    return redirect("curate-researchers")
