"""Listener pages: welcome, consent, and the odd-one-out page."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotation.auth import COOKIE, listener_from_cookie
from annotation.models import Judgment
from annotation.selectors import assignment_snippets
from annotation.services import AnnotationError, assignment_next, judgment_submit, listener_create

COOKIE_AGE_S = 365 * 24 * 3600


def welcome(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/welcome.html", {"listener": listener_from_cookie(request)})


@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "annotation/consent.html")
    try:
        listener = listener_create(request.POST.get("consent") == "yes", request.user)
    except AnnotationError as e:
        return render(request, "annotation/consent.html", {"error": str(e)}, status=400)
    response = redirect("listen")
    response.set_cookie(
        COOKIE,
        listener.token,
        max_age=COOKIE_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


def listen(request: HttpRequest) -> HttpResponse:
    listener = listener_from_cookie(request)
    if listener is None:
        return redirect("consent")
    assignment = assignment_next(listener)
    answered = Judgment.objects.filter(listener=listener).count()
    if assignment is None:
        return render(request, "annotation/done.html", {"answered": answered})
    context = {
        "assignment": assignment,
        "snippets": assignment_snippets(assignment),
        "answered": answered,
        "min_listen_s": settings.ODDBALL_MIN_LISTEN_S,
    }
    return render(request, "annotation/listen.html", context)


@require_POST
def answer(request: HttpRequest) -> HttpResponse:
    listener = listener_from_cookie(request)
    if listener is None:
        return redirect("consent")
    try:
        listen_ms = [int(request.POST.get(f"listen_ms_{p}", "0")) for p in "ABC"]
        judgment_submit(
            listener,
            int(request.POST["assignment"]),
            request.POST.get("answer", ""),
            int(request.POST.get("response_ms", "0")),
            listen_ms,
        )
    except (KeyError, ValueError):
        return HttpResponseBadRequest("The answer form was incomplete.")
    except AnnotationError as e:
        if e.status == 400:
            return HttpResponseBadRequest(str(e))
        # Expired or not ours: say so and serve a fresh triplet instead of an error page.
        messages.info(request, str(e))
    return redirect("listen")
