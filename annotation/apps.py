from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Listeners, tasks and judgments"

    def ready(self) -> None:
        from annotation import schema  # noqa: F401  registers the OpenAPI auth schemes
