"""Input and output serializers of the listening API."""

from rest_framework import serializers

from annotation.models import Assignment, Judgment, SnippetReport
from embeddings.models import Rendering


class ListenerIn(serializers.Serializer):
    consent = serializers.BooleanField()


class ListenerOut(serializers.Serializer):
    pseudonym = serializers.CharField()
    token = serializers.CharField()


class SnippetOut(serializers.Serializer):
    position = serializers.CharField()
    snippet = serializers.IntegerField()
    url = serializers.CharField()
    duration_s = serializers.FloatField()


class AssignmentOut(serializers.Serializer):
    assignment = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    min_listen_s = serializers.FloatField()
    practice = serializers.BooleanField()
    snippets = SnippetOut(many=True)


class AssignmentNextIn(serializers.Serializer):
    practice = serializers.BooleanField(default=False)
    after = serializers.ListField(child=serializers.IntegerField(min_value=1), default=list)


class SkipIn(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Assignment.SkipReason.values)


class SkipOut(serializers.Serializer):
    assignment = serializers.IntegerField()
    skipped = serializers.BooleanField()


def _per_position(**kwargs: object) -> serializers.ListField:
    return serializers.ListField(min_length=3, max_length=3, **kwargs)


class JudgmentIn(serializers.Serializer):
    assignment = serializers.IntegerField()
    answer = serializers.ChoiceField(choices=["A", "B", "C", "none"])
    response_ms = serializers.IntegerField(min_value=0, max_value=24 * 3600 * 1000)
    listen_ms = _per_position(child=serializers.IntegerField(min_value=0, max_value=3600 * 1000))
    plays = _per_position(
        child=serializers.IntegerField(min_value=0, max_value=10_000), default=None
    )
    seeks = _per_position(
        child=serializers.IntegerField(min_value=0, max_value=10_000), default=None
    )
    viewport = serializers.ChoiceField(choices=Judgment.Viewport.values, default="")
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", max_length=16, default=""
    )
    waited_ms = serializers.IntegerField(min_value=0, default=0)


class OthersOut(serializers.Serializer):
    A = serializers.IntegerField()
    B = serializers.IntegerField()
    C = serializers.IntegerField()
    none = serializers.IntegerField()


class JudgmentOut(serializers.Serializer):
    judgment = serializers.IntegerField()
    created = serializers.BooleanField()
    answered = serializers.IntegerField(help_text="Answers given, practice round aside.")
    others = OthersOut(allow_null=True, help_text="Others' answers by your positions, if enough.")
    practice_answer = serializers.CharField(allow_null=True, help_text="Practice round only.")


class ReportIn(serializers.Serializer):
    snippet = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=SnippetReport.Reason.values)
    note = serializers.CharField(max_length=500, allow_blank=True, default="")


class ReportOut(serializers.Serializer):
    report = serializers.IntegerField()


class MeOut(serializers.Serializer):
    pseudonym = serializers.CharField()
    answered = serializers.IntegerField()
    practice_left = serializers.IntegerField()
    finished = serializers.IntegerField()
    agreed = serializers.IntegerField()


# Transitions ------------------------------------------------------------------------------

DB_ID_MAX = 2**63 - 1  # bigint: a larger id is bad input, not a database error


class TransitionRenderingOut(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="Absolute URL of the rendering (Ogg Vorbis).")
    duration_s = serializers.FloatField()
    seam_s = serializers.FloatField(help_text="Where clip X hands over to clip Y, s.")
    style = serializers.ChoiceField(choices=Rendering.Style.values)


class TransitionAssignmentOut(serializers.Serializer):
    """What a listener is told about a transition: only what they hear. The task's kind and
    proposer stay hidden, so ratings are blind."""

    assignment = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    min_listen_s = serializers.FloatField()
    rendering = TransitionRenderingOut()


class TransitionNextIn(serializers.Serializer):
    after = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=DB_ID_MAX),
        default=list,
        help_text="Assignments the client already holds (repeat to prefetch further).",
    )


class RatingIn(serializers.Serializer):
    assignment = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX)
    rating = serializers.IntegerField(
        min_value=1, max_value=5, help_text="1 jarring … 5 seamless, as if one piece."
    )
    response_ms = serializers.IntegerField(min_value=0, max_value=24 * 3600 * 1000)
    listen_ms = serializers.IntegerField(min_value=0, max_value=3600 * 1000)
    broke_at_s = serializers.FloatField(
        min_value=0,
        max_value=3600,
        allow_null=True,
        default=None,
        help_text="Where the listener tapped 'it broke here', s into the rendering.",
    )
    plays = serializers.IntegerField(min_value=0, max_value=10_000, allow_null=True, default=None)
    seeks = serializers.IntegerField(min_value=0, max_value=10_000, allow_null=True, default=None)
    viewport = serializers.ChoiceField(choices=Judgment.Viewport.values, default="")
    language = serializers.RegexField(
        r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", max_length=16, default=""
    )
    waited_ms = serializers.IntegerField(min_value=0, max_value=DB_ID_MAX, default=0)


class RatingOut(serializers.Serializer):
    rating = serializers.IntegerField(help_text="The stored rating's id.")
    created = serializers.BooleanField()
    rated = serializers.IntegerField(help_text="Transitions this listener has rated.")
