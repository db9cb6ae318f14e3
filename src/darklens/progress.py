"""How library functions report progress without printing: a callable the caller passes in.

``progress(stage, done, total)`` is called with a stage name (``"checking files"``,
``"writing dataset"``, ``"evaluating test"``...), the number of items just finished (0 to
announce a stage) and the stage's total (None when unknown, e.g. while streaming files). The CLI
turns these calls into rich progress bars (:mod:`darklens.cli.progress`); library code never
builds a console. :func:`stage_counter` adapts such a callable to one stage's ``advance(n)``.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int | None], None]


def stage_counter(
    progress: Progress | None, stage: str, total: int | None
) -> Callable[[int], None]:
    """``advance(n)`` for one stage of ``progress`` (announced now); a no-op without one."""
    if progress is None:
        return lambda n: None
    progress(stage, 0, total)
    return lambda n: progress(stage, n, total)
