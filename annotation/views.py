"""Listener pages: welcome, consent, instructions, the odd-one-out and transition pages,
history, accounts.

The two listening pages are shells: their scripts are clients of the listening API, so the
pages, scripts and simulated crowds all go through the same services.
"""

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from annotation import selectors
from annotation.auth import COOKIE, listener_cookie_set, listener_from_cookie
from annotation.limits import ListenerCreateThrottle
from annotation.models import SnippetReport
from annotation.services import AnnotationError, listener_claim, listener_create

BATCH = 10  # a thank-you after every this many answers
# A transition counts as heard once it has played without a jump from SEAM_BEFORE_S before
# the seam to SEAM_AFTER_S after it, and for ODDBALL_MIN_LISTEN_S in all: a rating then
# rests on the change itself and on what came either side of it.
SEAM_BEFORE_S = 1.0  # s
SEAM_AFTER_S = 2.0  # s


def _listen_strings() -> dict[str, str]:
    """Everything listen.js says, in the request's language; {name} marks a value."""
    return {
        "loading": _("Loading the next three snippets…"),
        "load_failed": _("Snippet {position} did not load. Try again, or skip this one."),
        "play": _("Play snippet {position}"),
        "pause": _("Pause snippet {position}"),
        "heard": _("{heard} of {min} s"),
        "locked": _(
            "Answers unlock once each snippet has played for {min} s. Still to hear: {rest}."
        ),
        "unlocked": _("All three heard: pick the odd one out."),
        "sending": _("Sending your answer…"),
        "saved": _("Saved. Thank you!"),
        "others": _("Others so far: A {A} · B {B} · C {C} · can't tell {none}."),
        "others_pending": _("You will see how others heard it once {n} people have answered."),
        "practice_progress": _("Practice round: question {i} of {n}"),
        "practice_right": _(
            "Right! {position} comes from another recording; the other two are parts of one piece."
        ),
        "practice_wrong": _(
            "Not quite: {position} was the odd one; the other two are parts of one piece."
        ),
        "practice_done": _(
            "Practice done. From now on there is no right answer: tell us what you hear."
        ),
        "offline": _(
            "You seem to be offline. Your answer is kept and will be sent when the connection "
            "returns."
        ),
        "outbox_one": _("1 answer waiting to be sent."),
        "outbox_other": _("{n} answers waiting to be sent."),
        "expired": _("That one had timed out; here is a fresh one."),
        "skipped": _("Skipped; here is another one."),
        "done": _("There is nothing left for you to judge right now."),
        "error": _("Something went wrong: {detail}"),
        "slowed": _("Please take your time and listen to each one: the next comes in {s} seconds."),
        "report_title": _("Report a problem with snippet {position}"),
        "report_sent": _("Thanks for the report; a curator will look at it."),
        "batch_thanks": _("That makes {n} answers. Thank you!"),
    }


def _transition_strings() -> dict[str, str]:
    """Everything transitions.js says, in the request's language; {name} marks a value."""
    return {
        "load_failed": _("The transition did not load. Try again, or skip this one."),
        "play": _("Play the transition"),
        "pause": _("Pause the transition"),
        "position": _("{at} s of {length} s"),
        "seam_at": _("The seam is at {at} s (the line on the bar)."),
        "locked_seam": _(
            "Rating unlocks once the seam has played through: from {before} s before the "
            "line to {after} s after it, without jumping."
        ),
        "locked_time": _("Rating unlocks after {min} s of listening: {heard} s so far."),
        "unlocked": _("Heard it: how seamless was it?"),
        "broke_at": _("It broke at {at} s. Tap again to move the mark."),
        "sending": _("Sending your rating…"),
        "saved": _("Saved. Thank you!"),
        "offline": _(
            "You seem to be offline. Your rating is kept and will be sent when the connection "
            "returns."
        ),
        "outbox_one": _("1 rating waiting to be sent."),
        "outbox_other": _("{n} ratings waiting to be sent."),
        "expired": _("That one had timed out; here is a fresh one."),
        "skipped": _("Skipped; here is another one."),
        "error": _("Something went wrong: {detail}"),
        "slowed": _("Please take your time and listen to each one: the next comes in {s} seconds."),
        "batch_thanks": _("That makes {n} transitions rated. Thank you!"),
    }


def welcome(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/welcome.html", {"listener": listener_from_cookie(request)})


def _safe_next(request: HttpRequest, target: str) -> str:
    """`target` when it is a path on this site, else ""."""
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if target and safe else ""


@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    """Consent first; then the instructions, or the page that sent the listener here."""
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    if request.method == "GET":
        return render(request, "annotation/consent.html", {"next": next_url})
    # The page makes listeners too, so the API's per-address limit applies here as well.
    if not ListenerCreateThrottle().allow_request(request, None):
        context = {
            "error": _("Too many new listeners from this address; please try again later."),
            "next": next_url,
        }
        return render(request, "annotation/consent.html", context, status=429)
    try:
        listener = listener_create(request.POST.get("consent") == "yes", request.user)
    except AnnotationError as e:
        context = {"error": str(e), "next": next_url}
        return render(request, "annotation/consent.html", context, status=400)
    response = redirect(next_url or "instructions")
    listener_cookie_set(response, request, listener)
    return response


def instructions(request: HttpRequest) -> HttpResponse:
    listener = listener_from_cookie(request)
    if listener is None:
        return redirect("consent")
    context = {
        "min_listen_s": settings.ODDBALL_MIN_LISTEN_S,
        "practice_left": selectors.practice_left(listener),
    }
    return render(request, "annotation/instructions.html", context)


def listen(request: HttpRequest) -> HttpResponse:
    listener = listener_from_cookie(request)
    if listener is None:
        return redirect("consent")
    context = {
        "min_listen_s": settings.ODDBALL_MIN_LISTEN_S,
        "practice_left": selectors.practice_left(listener),
        "answered": selectors.answers_given(listener),
        "batch": BATCH,
        "practice_round": selectors.PRACTICE_ROUND,
        "finished_votes": settings.ODDBALL_FINISHED_VOTES,
        "report_reasons": SnippetReport.Reason.choices,
        "strings": _listen_strings(),
    }
    return render(request, "annotation/listen.html", context)


def listen_transitions(request: HttpRequest) -> HttpResponse:
    """The transition page: one rendering at a time, rated 1 (jarring) to 5 (seamless)."""
    listener = listener_from_cookie(request)
    if listener is None:
        return redirect(f"{reverse('consent')}?next={reverse('listen-transitions')}")
    context = {
        "seam_before_s": SEAM_BEFORE_S,
        "seam_after_s": SEAM_AFTER_S,
        "rated": selectors.transitions_rated(listener),
        "batch": BATCH,
        "strings": _transition_strings(),
    }
    return render(request, "annotation/transitions.html", context)


def history(request: HttpRequest) -> HttpResponse:
    listener = listener_from_cookie(request)
    if listener is None:
        return redirect("consent")
    summary = selectors.listener_summary(listener)
    context = {
        "listener": listener,
        "summary": summary,
        "finished_votes": settings.ODDBALL_FINISHED_VOTES,
    }
    return render(request, "annotation/history.html", context)


def _signed_in(request: HttpRequest, user: object) -> HttpResponse:
    """Sign the user in and make this device listen as them, keeping its answers."""
    login(request, user)
    listener = listener_claim(listener_from_cookie(request), user)
    target = _safe_next(request, request.POST.get("next", ""))
    if listener is None:
        # Not a listener yet: a curator signing in for /curate/ goes there; others consent.
        return redirect(target or "consent")
    response = redirect(target or settings.LOGIN_REDIRECT_URL)
    listener_cookie_set(response, request, listener)
    return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        return _signed_in(request, form.save())
    return render(
        request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200
    )


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = AuthenticationForm(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        return _signed_in(request, form.get_user())
    context = {"form": form, "next": request.GET.get("next", "")}
    return render(request, "registration/login.html", context, status=400 if form.errors else 200)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Sign out and forget this device's listener, so the next person starts afresh."""
    logout(request)
    response = redirect(settings.LOGOUT_REDIRECT_URL)
    response.delete_cookie(COOKIE, samesite="Lax")
    return response
