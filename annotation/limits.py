"""Abuse limits: request rates per listener and per address, and slowing down a listener
who answers faster than anyone can listen.

Two layers, for two kinds of abuse:

- **Rates** (DRF throttles below, rates in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]) bound
  how often one listener, and one address, may be served and may answer, and how many
  listeners one address may create. They stop scripts hammering the API; an honest pace
  (one answer per snippet heard) stays far below them.
- **Pace** (`listener_pace_check`): the timings a listener reports say whether they could
  have heard what they answered about. ODDBALL_SLOW_STREAK answers in a row each given
  before ODDBALL_MIN_LISTEN_S of listening (the least the listening page asks for) slow
  the listener down: nothing new is served for ODDBALL_SLOW_S, and they are flagged for a
  curator. One quick answer is a slip; a streak is a pattern. Serving answers 429 with
  Retry-After and a plain reason, never an error page: the page waits and goes on, and
  answers already given (or waiting in the page's outbox) are still taken.

Answers count only when given after the latest slow-down ended, so the wait is served once
per streak, not again and again for the same answers.
"""

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from annotation.models import AuditEntry, Judgment, Listener, TransitionRating
from annotation.quality_services import FLAG_ACTION

SLOW_ACTION = "slow"  # AuditEntry.action of an automatic slow-down
SLOW_REASON = "answered faster than the music plays"
TRIPLETS, TRANSITIONS = "triplets", "transitions"


# Rates ---------------------------------------------------------------------------------------


class _Throttle(SimpleRateThrottle):
    """Reads its rate when asked, not at import, so a settings change (tests, reload) holds."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class _PerListener(_Throttle):
    """Keyed by the listener making the call; calls without one are left to the address
    limit (and refused by the view anyway)."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if not isinstance(request.auth, Listener):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.id}


class _PerAddress(_Throttle):
    """Keyed by the client's address (REST_FRAMEWORK["NUM_PROXIES"] says which one)."""

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ServeListenerThrottle(_PerListener):
    scope = "serve-listener"


class ServeAddressThrottle(_PerAddress):
    scope = "serve-address"


class AnswerListenerThrottle(_PerListener):
    scope = "answer-listener"


class AnswerAddressThrottle(_PerAddress):
    scope = "answer-address"


class ListenerCreateThrottle(_PerAddress):
    scope = "listener-create"


SERVE_THROTTLES = [ServeListenerThrottle, ServeAddressThrottle]
ANSWER_THROTTLES = [AnswerListenerThrottle, AnswerAddressThrottle]
CREATE_THROTTLES = [ListenerCreateThrottle]


# Pace ----------------------------------------------------------------------------------------


def _floor_ms() -> int:
    return round(settings.ODDBALL_MIN_LISTEN_S * 1000)


def _too_fast(response_ms: int, listen_ms: list[int] | int) -> bool:
    """Answered before hearing ODDBALL_MIN_LISTEN_S of every snippet (or of the transition)."""
    floor = _floor_ms()
    heard = min(listen_ms) if isinstance(listen_ms, list) else listen_ms
    return response_ms < floor or heard < floor


def _too_fast_streak(listener: Listener, kind: str, since: datetime | None) -> list[int]:
    """Ids of the listener's last ODDBALL_SLOW_STREAK answers of this kind given after
    `since`, when every one of them came too fast; else []."""
    streak = settings.ODDBALL_SLOW_STREAK
    if streak < 1:  # the slow-down is off: no query
        return []
    model = Judgment if kind == TRIPLETS else TransitionRating
    answers = model.objects.filter(listener=listener).order_by("-created_at", "-id")
    if since is not None:
        answers = answers.filter(created_at__gt=since)
    recent = list(answers.values_list("id", "response_ms", "listen_ms")[:streak])
    if len(recent) < streak:
        return []
    if not all(_too_fast(response_ms, listen_ms) for _, response_ms, listen_ms in recent):
        return []
    return [answer_id for answer_id, _, _ in recent]


def listener_pace_check(listener: Listener, kind: str) -> int:
    """Seconds the listener must wait before being served another `kind` task, 0 when
    they may be served now. Slows down (and flags) a listener whose latest answers came
    too fast; see the module's docstring.

    The slow-down is a conditional UPDATE on the `slowed_until` value read, so of two
    concurrent requests only one slows the listener and writes the audit entries. Flags
    only a listener under review "ok": a curator's decision is never overridden.
    """
    now = timezone.now()
    if listener.slowed_until and listener.slowed_until > now:
        return math.ceil((listener.slowed_until - now).total_seconds())
    answers = _too_fast_streak(listener, kind, listener.slowed_until)
    if not answers:
        return 0
    wait_s = settings.ODDBALL_SLOW_S
    until = now + timedelta(seconds=wait_s)
    reason = f"{SLOW_REASON}: {len(answers)} answers in a row heard under {_floor_ms()} ms"
    with transaction.atomic():
        slowed = Listener.objects.filter(id=listener.id, slowed_until=listener.slowed_until)
        if not slowed.update(slowed_until=until):
            listener.refresh_from_db(fields=["slowed_until"])
            left = (listener.slowed_until - now).total_seconds() if listener.slowed_until else 0
            return max(math.ceil(left), 0)
        entry = {"actor": None, "target_type": "listener", "target_id": listener.id}
        AuditEntry.objects.create(
            action=SLOW_ACTION,
            reason=reason,
            data={"kind": kind, "answers": answers, "wait_s": wait_s},
            **entry,
        )
        flagged = Listener.objects.filter(id=listener.id, review=Listener.Review.OK).update(
            review=Listener.Review.FLAGGED, flag_reasons=[*listener.flag_reasons, SLOW_REASON]
        )
        if flagged:
            AuditEntry.objects.create(action=FLAG_ACTION, reason=reason, **entry)
    listener.slowed_until = until
    return wait_s


def slowed_response(listener: Listener, kind: str) -> Response | None:
    """The API's polite refusal while the listener is slowed down: 429 with Retry-After and
    `{"detail": ..., "wait_s": n}`; None when they may be served."""
    wait_s = listener_pace_check(listener, kind)
    if not wait_s:
        return None
    body = {
        "detail": "You are answering faster than the music plays. "
        f"Take a breath: the next one comes in {wait_s} s.",
        "code": "slowed",
        "wait_s": wait_s,
    }
    headers = {"Retry-After": str(wait_s)}
    return Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS, headers=headers)
