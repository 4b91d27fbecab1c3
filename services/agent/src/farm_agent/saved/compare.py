"""A screenshot compared with the tenant's baseline of its key, or made the baseline if none.

The diff is CPU work on whole images, so it runs in a thread; the diff image is
stored as an artifact of the task (ARTIFACT_KIND_DIFF).
"""

import asyncio
from collections.abc import Awaitable, Callable

from farm.tasks.v1 import tasks_pb2
from farm_agent.saved.capture import PendingComparison
from farm_agent.saved.client import SavedState
from farm_agent.work.uploader import ArtifactOwner
from farm_core.saved import BaselineKey

StoreDiff = Callable[[bytes], Awaitable[tasks_pb2.ArtifactRef]]
"""Stores a diff image (PNG) as an artifact; its reference."""


async def compare_with_baseline(
    saved: SavedState,
    owner: ArtifactOwner,
    pending: PendingComparison,
    screenshot: tasks_pb2.ArtifactRef,
    store_diff: StoreDiff,
) -> tasks_pb2.VisualComparison:
    """The comparison of the stored `screenshot` with its key's baseline (of `owner`'s tenant).

    Without a baseline the screenshot becomes it. When another task makes the
    key's baseline at the same moment, the screenshot is compared with that one.
    """
    key = BaselineKey(pending.name, pending.url, pending.viewport_width, pending.viewport_height)
    baseline = await saved.baseline_image(owner, key)
    if baseline is None:
        made = await saved.create_baseline(owner, key, screenshot.id)
        if made.created:
            return tasks_pb2.VisualComparison(
                baseline=pending.name, baseline_id=made.id, new_baseline=True, passed=True
            )
        baseline = await saved.baseline_image(owner, key)
        if baseline is None:
            # Deleted again at once: this screenshot stands as compared with nothing.
            return tasks_pb2.VisualComparison(baseline=pending.name, passed=True)
    # numpy and Pillow (about 15 MiB) load with the first comparison, not with every agent.
    from farm_agent.saved.diff import compare_images

    diff = await asyncio.to_thread(compare_images, baseline.image, pending.image, pending.masks)
    comparison = tasks_pb2.VisualComparison(
        baseline=pending.name,
        baseline_id=baseline.id,
        diff_ratio=diff.ratio,
        passed=diff.ratio <= pending.threshold and not diff.size_mismatch,
        size_mismatch=diff.size_mismatch,
    )
    if diff.changed is not None:
        comparison.changed.CopyFrom(
            tasks_pb2.Box(
                x=diff.changed.x,
                y=diff.changed.y,
                width=diff.changed.width,
                height=diff.changed.height,
            )
        )
    if diff.image is not None:
        comparison.diff.CopyFrom(await store_diff(diff.image))
    return comparison
