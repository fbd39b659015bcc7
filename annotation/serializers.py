"""Input and output serializers of the listening API."""

from rest_framework import serializers


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
    snippets = SnippetOut(many=True)


class JudgmentIn(serializers.Serializer):
    assignment = serializers.IntegerField()
    answer = serializers.ChoiceField(choices=["A", "B", "C", "none"])
    response_ms = serializers.IntegerField(min_value=0, max_value=24 * 3600 * 1000)
    listen_ms = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=3600 * 1000),
        min_length=3,
        max_length=3,
    )


class JudgmentOut(serializers.Serializer):
    judgment = serializers.IntegerField()
    created = serializers.BooleanField()
