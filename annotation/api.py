"""The listening API under /api/v1/: create a listener, get the next triplet, answer it."""

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import serializers as s
from annotation.models import Assignment, Listener
from annotation.selectors import assignment_snippets
from annotation.services import AnnotationError, assignment_next, judgment_submit, listener_create


def _listener(request: Request) -> Listener:
    if not isinstance(request.auth, Listener):
        raise NotAuthenticated("Send `Authorization: Listener <token>`; POST /api/v1/listeners/.")
    return request.auth


def _error(e: AnnotationError) -> Response:
    return Response({"detail": str(e)}, status=e.status)


def assignment_payload(request: HttpRequest, assignment: Assignment) -> dict:
    return {
        "assignment": assignment.id,
        "expires_at": assignment.expires_at,
        "min_listen_s": settings.ODDBALL_MIN_LISTEN_S,
        "snippets": [
            {
                "position": position,
                "snippet": snippet.id,
                "url": request.build_absolute_uri(snippet.audio.url),
                "duration_s": snippet.duration_s,
            }
            for position, snippet in assignment_snippets(assignment)
        ],
    }


class ListenerCreateApi(APIView):
    @extend_schema(request=s.ListenerIn, responses={201: s.ListenerOut})
    def post(self, request: Request) -> Response:
        data = s.ListenerIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            listener = listener_create(data.validated_data["consent"], request.user)
        except AnnotationError as e:
            return _error(e)
        out = s.ListenerOut({"pseudonym": listener.pseudonym, "token": listener.token})
        return Response(out.data, status=status.HTTP_201_CREATED)


class AssignmentNextApi(APIView):
    @extend_schema(responses={200: s.AssignmentOut, 204: None})
    def get(self, request: Request) -> Response:
        assignment = assignment_next(_listener(request))
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(s.AssignmentOut(assignment_payload(request, assignment)).data)


class JudgmentCreateApi(APIView):
    @extend_schema(request=s.JudgmentIn, responses={201: s.JudgmentOut, 200: s.JudgmentOut})
    def post(self, request: Request) -> Response:
        listener = _listener(request)
        data = s.JudgmentIn(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            result = judgment_submit(
                listener, v["assignment"], v["answer"], v["response_ms"], v["listen_ms"]
            )
        except AnnotationError as e:
            return _error(e)
        out = s.JudgmentOut({"judgment": result.judgment.id, "created": result.created})
        return Response(out.data, status=201 if result.created else 200)
