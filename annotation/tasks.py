"""Celery adapters for the annotation app: take ids, call one service, return."""

import logging

from celery import shared_task

from annotation import quality_services, releases, transition_services
from annotation.release_selectors import releases_stale
from annotation.selectors import transition_tasks_unrendered

log = logging.getLogger(__name__)
RENDER_SWEEP_AFTER_S = 300  # s a task may wait for its rendering before it is sent again
RELEASE_SWEEP_AFTER_S = 300  # s a building release may go without progress before a resend


@shared_task(name="annotation.render_transition", queue="ingest", acks_late=True)
def render_transition(task_id: int) -> int:
    """Render one transition task's audio (idempotent); returns the rendering id."""
    return transition_services.transition_task_render(task_id)


@shared_task(name="annotation.sweep_renderings", queue="ingest")
def sweep_renderings() -> list[int]:
    """Beat: send again the render of tasks whose rendering never came (a lost message)."""
    lost = transition_tasks_unrendered(RENDER_SWEEP_AFTER_S)
    if lost:
        log.warning("%d transition tasks have no rendering; sending them again", len(lost))
    for task_id in lost:
        render_transition.delay(task_id)
    return lost


@shared_task(name="annotation.quality_update", queue="ingest")
def quality_update() -> dict:
    """Beat: re-assess listeners (reliability, weights, flags); returns what changed."""
    report = quality_services.quality_update()
    return {
        "listeners": report.listeners,
        "flagged_listeners": report.flagged_listeners,
        "flagged_judgments": len(report.flagged_judgments),
    }


@shared_task(name="annotation.release_cut", queue="ingest", acks_late=True)
def release_cut(release_id: int) -> str:
    """Build a started dataset release's files (idempotent: a finished release is left as
    it is); returns its status."""
    return releases.release_build(release_id).status


@shared_task(name="annotation.sweep_releases", queue="ingest")
def sweep_releases() -> list[int]:
    """Beat: send again the cut of releases left building without progress (a lost message
    or a dead worker). A second build of one release cannot publish twice: the first to
    rename its folder into place wins, the other's result is dropped."""
    lost = releases_stale(RELEASE_SWEEP_AFTER_S)
    if lost:
        log.warning("%d dataset releases stopped building; sending them again", len(lost))
    for release_id in lost:
        release_cut.delay(release_id)
    return lost
