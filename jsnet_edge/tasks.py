"""The restoration tasks a JSNet can be built for, and their output scale."""

from __future__ import annotations

from jsnet_edge.errors import OptionError

# Task name -> output scale. x1 tasks predict a residual that is added to the input.
TASKS: dict[str, int] = {"sr-x2": 2, "sr-x3": 3, "sr-x4": 4, "denoise": 1, "jpeg": 1}


def check_task(task: str) -> str:
    if task not in TASKS:
        raise OptionError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    return task


def task_scale(task: str) -> int:
    return TASKS[check_task(task)]


def is_sr(task: str) -> bool:
    return task_scale(task) > 1
