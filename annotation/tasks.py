"""Celery adapters for the annotation app: take ids, call one service, return."""

from celery import shared_task

from annotation import transition_services


@shared_task(name="annotation.render_transition", queue="ingest", acks_late=True)
def render_transition(task_id: int) -> int:
    """Render one transition task's audio (idempotent); returns the rendering id."""
    return transition_services.transition_task_render(task_id)
