"""The listening API under /api/v1/: create a listener, get the next triplet, answer it,
skip it, report a snippet; get the next transition, rate it, skip it. The listening pages
are clients of this API like any other."""

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
from annotation.models import Assignment, Listener, TransitionAssignment
from annotation.services import (
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


def assignment_payload(request: HttpRequest, assignment: Assignment) -> dict:
    return {
        "assignment": assignment.id,
        "expires_at": assignment.expires_at,
        "min_listen_s": settings.ODDBALL_MIN_LISTEN_S,
        "practice": assignment.practice,
        "snippets": [
            {
                "position": position,
                "snippet": snippet.id,
                "url": request.build_absolute_uri(snippet.audio.url),
                "duration_s": snippet.duration_s,
            }
            for position, snippet in selectors.assignment_snippets(assignment)
        ],
    }


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
        return Response(s.AssignmentOut(assignment_payload(request, assignment)).data)


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
        data = s.JudgmentIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        answer = Answer(
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
        try:
            result = judgment_submit(listener, answer)
        except AnnotationError as e:
            return _error(e)
        out = {
            "judgment": result.judgment.id,
            "created": result.created,
            "answered": selectors.answers_given(listener),
            **selectors.judgment_feedback(result.judgment),
        }
        return Response(s.JudgmentOut(out).data, status=201 if result.created else 200)


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
