"""One shape for API errors: `{"detail": "...", "code": "..."}`, with `wait_s` on 429.

`api_exception_handler` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) adds the machine-readable
`code` to DRF's `detail`, and to a throttled request the seconds to wait, the same
`wait_s` the listening API's own slow-down answers carry (annotation/limits.py). It leaves
validation errors in DRF's shape (field names at the top level), which the listening
clients and their tests read. The research API uses `enveloped_exception_handler`, where a
validation error also has `detail` and `code` and its field errors sit under `errors`.

Errors that are not APIExceptions (bugs) still reach Django as 500s, logged with a trace.
"""

import math

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler

INVALID = "invalid"


def _code(codes: object) -> str:
    """The first code of a DRF `get_codes()` result, however nested."""
    while isinstance(codes, dict | list) and codes:
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return codes if isinstance(codes, str) and codes else "error"


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    response = exception_handler(exc, context)
    if response is None or isinstance(exc, ValidationError):
        return response
    if isinstance(response.data, dict) and "detail" in response.data:
        response.data["code"] = _code(exc.get_codes())
        if isinstance(exc, Throttled) and exc.wait is not None:
            response.data["wait_s"] = math.ceil(exc.wait)
    return response


def _first_message(errors: object) -> str:
    while isinstance(errors, dict | list) and errors:
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    return str(errors) if errors else "Invalid input."


def enveloped_exception_handler(exc: Exception, context: dict) -> Response | None:
    response = api_exception_handler(exc, context)
    if response is None or not isinstance(exc, ValidationError):
        return response
    errors = (
        response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
    )
    field = next(iter(errors), "")
    where = "" if field in ("", "non_field_errors") else f"{field}: "
    response.data = {
        "detail": where + _first_message(errors),
        "code": INVALID,
        "errors": errors,
    }
    return response


# Schema --------------------------------------------------------------------------------------


class ApiErrorOut(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for people.")
    code = serializers.CharField(help_text="What went wrong, for programs.")


class ApiThrottledOut(ApiErrorOut):
    wait_s = serializers.IntegerField(help_text="Seconds until the next request is allowed.")


class ApiValidationErrorOut(ApiErrorOut):
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages by field name; `non_field_errors` for the input as a whole.",
    )


# DRF's own validation shape, which the listening API keeps: messages by field name (a
# list field's items by index), `non_field_errors` for the input as a whole.
FIELD_ERRORS = OpenApiResponse(
    {"type": "object", "additionalProperties": {}},
    description="Invalid input: messages by field name.",
)


def error_responses(*codes: int, enveloped: bool = True) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for these error statuses, with their bodies. `enveloped=False`
    describes a 400 in DRF's plain shape (views without enveloped_exception_handler)."""
    described = {
        400: OpenApiResponse(ApiValidationErrorOut, description="Invalid parameters.")
        if enveloped
        else FIELD_ERRORS,
        401: OpenApiResponse(ApiErrorOut, description="No credentials, or an unknown token."),
        403: OpenApiResponse(ApiErrorOut, description="The account may not use this API."),
        404: OpenApiResponse(ApiErrorOut, description="No such object, or not public."),
        409: OpenApiResponse(ApiErrorOut, description="Conflicts with the object's state."),
        410: OpenApiResponse(ApiErrorOut, description="Gone, e.g. an expired assignment."),
        429: OpenApiResponse(ApiThrottledOut, description="Too many requests; wait `wait_s`."),
    }
    return {code: described[code] for code in codes}
