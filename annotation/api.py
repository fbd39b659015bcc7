"""The listening API under /api/v1/: create a listener, get the next triplet, answer it,
skip it, report a snippet; get the next transition, rate it, skip it. The listening pages
are clients of this API like any other."""

import re

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors
from annotation import serializers as s
from annotation.api_errors import error_responses
from annotation.limits import (
    ANSWER_THROTTLES,
    CREATE_THROTTLES,
    SERVE_THROTTLES,
    TRANSITIONS,
    TRIPLETS,
    slowed_response,
)
from annotation.models import Assignment, Judgment, Listener, TransitionAssignment
from annotation.services import (
    DB_ID_MAX,
    AnnotationError,
    Answer,
    assignment_next,
    assignment_skip,
    judgment_submit,
    listener_create,
    snippet_report,
)
from annotation.transition_services import (
    Rating,
    transition_assignment_next,
    transition_assignment_skip,
    transition_rating_submit,
)


def _listener(request: Request) -> Listener:
    if not isinstance(request.auth, Listener):
        raise NotAuthenticated("Send `Authorization: Listener <token>`; POST /api/v1/listeners/.")
    return request.auth


ERROR_CODES = {400: "invalid", 403: "permission_denied", 404: "not_found", 409: "conflict"}


def _error(e: AnnotationError) -> Response:
    code = ERROR_CODES.get(e.status, "gone" if e.status == 410 else "error")
    return Response({"detail": str(e), "code": code}, status=e.status)


DATETIME = s.AssignmentOut().fields["expires_at"]  # DRF's own rendering of a datetime


def assignment_payload(request: HttpRequest, assignment: Assignment) -> dict:
    """`s.AssignmentOut` by hand: the serializer cost more CPU than the rest of the request."""
    return {
        "assignment": assignment.id,
        "expires_at": DATETIME.to_representation(assignment.expires_at),
        "min_listen_s": float(settings.ODDBALL_MIN_LISTEN_S),
        "practice": bool(assignment.practice),
        "snippets": [
            {
                "position": position,
                "snippet": snippet.id,
                "url": request.build_absolute_uri(snippet.audio.url),
                "duration_s": float(snippet.duration_s),
            }
            for position, snippet in selectors.assignment_snippets(assignment)
        ],
    }


# The two hot endpoints read plain input by hand and hand anything else to their DRF
# serializer, which accepts a superset of it and words every error as before: the same
# values come out, at a fraction of the CPU (bench/load.py).
PRACTICE_VALUES = {"true": True, "false": False, "1": True, "0": False}
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def _next_query(request: Request) -> dict | None:
    """`s.AssignmentNextIn`'s validated data for a plain query string, else None."""
    practice = PRACTICE_VALUES.get(request.query_params.get("practice", "false"))
    after = request.query_params.getlist("after")
    if practice is None or not all(_is_id_text(a) for a in after):
        return None
    return {"practice": practice, "after": [int(a) for a in after]}


def _is_id_text(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19 and int(text) >= 1


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _is_counts(value: object, high: int) -> bool:
    return type(value) is list and len(value) == 3 and all(_is_int(v, 0, high) for v in value)


def _answer_plain(data: object) -> Answer | None:
    """`s.JudgmentIn`'s validated data as an Answer, for a plain JSON body, else None."""
    if type(data) is not dict:
        return None
    plays, seeks = data.get("plays"), data.get("seeks")
    viewport, language = data.get("viewport"), data.get("language")
    plain = (
        _is_int(data.get("assignment"), -DB_ID_MAX, DB_ID_MAX)
        and data.get("answer") in ("A", "B", "C", "none")
        and _is_int(data.get("response_ms"), 0, 24 * 3600 * 1000)
        and _is_counts(data.get("listen_ms"), 3600 * 1000)
        and ("plays" not in data or _is_counts(plays, 10_000))
        and ("seeks" not in data or _is_counts(seeks, 10_000))
        and ("viewport" not in data or viewport in Judgment.Viewport.values)
        and ("language" not in data or _is_language(language))
        and ("waited_ms" not in data or _is_int(data["waited_ms"], 0, DB_ID_MAX))
    )
    if not plain:
        return None
    return Answer(
        assignment_id=data["assignment"],
        answer=data["answer"],
        response_ms=data["response_ms"],
        listen_ms=data["listen_ms"],
        plays=plays,
        seeks=seeks,
        viewport=viewport or "",
        language=language or "",
        waited_ms=data.get("waited_ms", 0),
    )


def _is_language(value: object) -> bool:
    return type(value) is str and len(value) <= 16 and LANGUAGE.fullmatch(value) is not None


def _answer_validated(request: Request) -> Answer:
    """The answer in the request, validated by `s.JudgmentIn` (400 with its errors)."""
    data = s.JudgmentIn(data=request.data)
    data.is_valid(raise_exception=True)
    v = data.validated_data
    return Answer(
        assignment_id=v["assignment"],
        answer=v["answer"],
        response_ms=v["response_ms"],
        listen_ms=v["listen_ms"],
        plays=v["plays"],
        seeks=v["seeks"],
        viewport=v["viewport"],
        language=v["language"],
        waited_ms=v["waited_ms"],
    )


class ListenerCreateApi(APIView):
    throttle_classes = CREATE_THROTTLES

    @extend_schema(
        request=s.ListenerIn,
        responses={201: s.ListenerOut, **error_responses(400, 429, enveloped=False)},
    )
    def post(self, request: Request) -> Response:
        data = s.ListenerIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            listener = listener_create(data.validated_data["consent"], request.user)
        except AnnotationError as e:
            return _error(e)
        out = s.ListenerOut({"pseudonym": listener.pseudonym, "token": listener.token})
        return Response(out.data, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    @extend_schema(responses={200: s.MeOut, **error_responses(401)})
    def get(self, request: Request) -> Response:
        listener = _listener(request)
        summary = selectors.listener_summary(listener, recent=0)
        out = {
            "pseudonym": listener.pseudonym,
            "answered": summary.answered,
            "practice_left": selectors.practice_left(listener),
            "finished": summary.finished,
            "agreed": summary.agreed,
        }
        return Response(s.MeOut(out).data)


class AssignmentNextApi(APIView):
    throttle_classes = SERVE_THROTTLES

    @extend_schema(
        parameters=[s.AssignmentNextIn],
        responses={
            200: s.AssignmentOut,
            204: None,
            **error_responses(400, 401, 403, 404, 409, 410, 429, enveloped=False),
        },
    )
    def get(self, request: Request) -> Response:
        listener = _listener(request)
        if (slowed := slowed_response(listener, TRIPLETS)) is not None:
            return slowed
        v = _next_query(request)
        if v is None:
            query = s.AssignmentNextIn(
                data={
                    "practice": request.query_params.get("practice", "false"),
                    "after": request.query_params.getlist("after"),
                }
            )
            query.is_valid(raise_exception=True)
            v = query.validated_data
        assignment = assignment_next(listener, practice=v["practice"], exclude=v["after"])
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(assignment_payload(request, assignment))


class AssignmentSkipApi(APIView):
    @extend_schema(
        request=s.SkipIn,
        responses={
            200: s.SkipOut,
            **error_responses(400, 401, 403, 404, 409, 410, 429, enveloped=False),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        listener = _listener(request)
        data = s.SkipIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            assignment = assignment_skip(listener, assignment_id, data.validated_data["reason"])
        except AnnotationError as e:
            return _error(e)
        return Response(s.SkipOut({"assignment": assignment.id, "skipped": True}).data)


class JudgmentCreateApi(APIView):
    throttle_classes = ANSWER_THROTTLES

    @extend_schema(
        request=s.JudgmentIn,
        responses={
            201: s.JudgmentOut,
            200: s.JudgmentOut,
            **error_responses(400, 401, 403, 404, 409, 410, 429, enveloped=False),
        },
    )
    def post(self, request: Request) -> Response:
        listener = _listener(request)
        answer = _answer_plain(request.data) or _answer_validated(request)
        try:
            result = judgment_submit(listener, answer)
        except AnnotationError as e:
            return _error(e)
        outcome = result.outcome
        if outcome is None:
            outcome = selectors.judgment_outcome(
                listener, result.judgment, result.judgment.assignment.order
            )
        out = {  # s.JudgmentOut by hand, as assignment_payload
            "judgment": result.judgment.id,
            "created": result.created,
            "answered": outcome["answered"],
            "others": outcome["others"],
            "practice_answer": outcome["practice_answer"],
        }
        return Response(out, status=201 if result.created else 200)


class ReportCreateApi(APIView):
    @extend_schema(
        request=s.ReportIn,
        responses={
            201: s.ReportOut,
            **error_responses(400, 401, 403, 404, 409, 429, enveloped=False),
        },
    )
    def post(self, request: Request) -> Response:
        listener = _listener(request)
        data = s.ReportIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            report = snippet_report(listener, v["snippet"], v["reason"], v["note"])
        except AnnotationError as e:
            return _error(e)
        return Response(s.ReportOut({"report": report.id}).data, status=status.HTTP_201_CREATED)


# Transitions ------------------------------------------------------------------------------


def transition_payload(request: HttpRequest, assignment: TransitionAssignment) -> dict:
    """What the listener hears and nothing more: the task's kind and proposer stay hidden."""
    rendering = assignment.task.rendering
    return {
        "assignment": assignment.id,
        "expires_at": assignment.expires_at,
        "min_listen_s": settings.ODDBALL_MIN_LISTEN_S,
        "rendering": {
            "id": rendering.id,
            "url": request.build_absolute_uri(rendering.audio.url),
            "duration_s": rendering.duration_s,
            "seam_s": rendering.seam_s,
            "style": rendering.style,
        },
    }


class TransitionNextApi(APIView):
    """The listener's next transition to rate; 204 when none is left. Repeat `after` to
    fetch ahead while holding the assignments named."""

    throttle_classes = SERVE_THROTTLES

    @extend_schema(
        parameters=[s.TransitionNextIn],
        responses={
            200: s.TransitionAssignmentOut,
            204: None,
            **error_responses(400, 401, 403, 404, 409, 410, 429, enveloped=False),
        },
    )
    def get(self, request: Request) -> Response:
        listener = _listener(request)
        if (slowed := slowed_response(listener, TRANSITIONS)) is not None:
            return slowed
        query = s.TransitionNextIn(data={"after": request.query_params.getlist("after")})
        query.is_valid(raise_exception=True)
        assignment = transition_assignment_next(listener, exclude=query.validated_data["after"])
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.TransitionAssignmentOut(transition_payload(request, assignment)).data)


class TransitionSkipApi(APIView):
    """Give a transition back unrated, e.g. when its audio would not load. Idempotent."""

    @extend_schema(
        request=s.SkipIn,
        responses={
            200: s.SkipOut,
            **error_responses(400, 401, 403, 404, 409, 410, 429, enveloped=False),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        listener = _listener(request)
        data = s.SkipIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            assignment = transition_assignment_skip(
                listener, assignment_id, data.validated_data["reason"]
            )
        except AnnotationError as e:
            return _error(e)
        return Response(s.SkipOut({"assignment": assignment.id, "skipped": True}).data)


class RatingCreateApi(APIView):
    """Rate a transition 1 (jarring) to 5 (seamless). Idempotent: a repeat returns the
    stored rating with 200; 403 for another's assignment, 409 skipped, 410 expired."""

    throttle_classes = ANSWER_THROTTLES

    @extend_schema(
        request=s.RatingIn,
        responses={
            201: s.RatingOut,
            200: s.RatingOut,
            **error_responses(400, 401, 403, 404, 409, 410, 429, enveloped=False),
        },
    )
    def post(self, request: Request) -> Response:
        listener = _listener(request)
        data = s.RatingIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        rating = Rating(
            assignment_id=v["assignment"],
            rating=v["rating"],
            response_ms=v["response_ms"],
            listen_ms=v["listen_ms"],
            broke_at_s=v["broke_at_s"],
            plays=v["plays"],
            seeks=v["seeks"],
            viewport=v["viewport"],
            language=v["language"],
            waited_ms=v["waited_ms"],
        )
        try:
            result = transition_rating_submit(listener, rating)
        except AnnotationError as e:
            return _error(e)
        out = {
            "rating": result.rating.id,
            "created": result.created,
            "rated": selectors.transitions_rated(listener),
        }
        return Response(s.RatingOut(out).data, status=201 if result.created else 200)
