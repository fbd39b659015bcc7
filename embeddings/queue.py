"""Run a batch of Celery tasks from a management command, with a progress bar.

In the embedded default (no broker) tasks execute in-process as they are sent; with a broker
they are all enqueued first and the command waits for their results.
"""

from collections.abc import Iterable
from typing import Any

from celery import Task
from django.conf import settings
from tqdm import tqdm

RESULT_TIMEOUT_S = 30 * 60


def tasks_run(task: Task, arg_list: Iterable[tuple], desc: str, **kwargs: Any) -> list[Any]:
    """Send `task(*args, **kwargs)` for each args tuple and return the results in order."""
    arg_list = list(arg_list)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return [task.delay(*args, **kwargs).get() for args in tqdm(arg_list, desc=desc, unit="job")]
    pending = [task.delay(*args, **kwargs) for args in arg_list]
    results = []
    for result in tqdm(pending, desc=f"{desc} ({task.queue} queue)", unit="job"):
        results.append(result.get(timeout=RESULT_TIMEOUT_S))
    return results
