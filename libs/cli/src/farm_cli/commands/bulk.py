"""What the commands that make one call per item share: their threads and progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.progress import Progress

Item = TypeVar("Item")
Result = TypeVar("Result")


def as_they_end(
    work: Callable[[Item], Result], items: Sequence[Item], concurrency: int, name: str
) -> Iterator[Result]:
    """`work(item)` for every item, `concurrency` at a time, each result as it ends.

    An exception of one item's work is raised here, and the items not yet started are
    dropped (a refused key would refuse them all). An exception here (Ctrl-C while the
    items run, the caller closing the iterator) is raised at once, without waiting for
    the items under way: their calls end when the caller closes their channel.
    """
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name)
    try:
        futures = [executor.submit(work, item) for item in items]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def progress_bar(title: str, not_done: str, *, quiet: bool) -> Progress:
    """A bar on stderr counting the items that ended, and (field `failed`) the not done.

    Shown only on a terminal, and never when `quiet`.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{{task.fields[failed]}} {not_done}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet or not sys.stderr.isatty(),
    )
