"""Stores what a task attempt or a session command produced, before its result is reported.

Its artifacts first (the screenshot a comparison needs is then stored), then the
comparison with the tenant's baseline, then the profile it saves.
"""

import dataclasses

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture, CapturedArtifact
from farm_agent.errors import TaskFailure
from farm_agent.saved.client import SavedState
from farm_agent.saved.compare import compare_with_baseline
from farm_agent.traces import artifact_attributes
from farm_agent.work.uploader import ArtifactOwner, ArtifactUploader
from farm_core.task_errors import ErrorCode
from farm_core.tracing import tracer

DIFF_NAME = "diff"


class CaptureKeeper:
    """Stores captures' artifacts, comparisons and profiles; loads profiles to start from."""

    def __init__(self, uploader: ArtifactUploader, saved: SavedState | None) -> None:
        self._uploader = uploader
        self._saved = saved

    async def load_profile(self, owner: ArtifactOwner, name: str) -> bytes:
        """The profile `name` of `owner`'s tenant to start from; empty when it has none yet."""
        return await self._saved_state("profile").load_profile(owner, name)

    async def save_profile(self, owner: ArtifactOwner, name: str, state: bytes) -> None:
        """Saves `state` as the profile `name` of `owner`'s tenant."""
        await self._saved_state("profile").save_profile(owner, name, state)

    async def upload(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> tasks_pb2.ArtifactRef:
        """Stores one artifact under `owner` (a task or a session)."""
        with tracer().start_as_current_span(
            "artifact.upload", attributes=artifact_attributes(artifact)
        ):
            return await self._uploader.upload(owner, artifact)

    async def keep(
        self, owner: ArtifactOwner, capture: Capture, name_prefix: str = ""
    ) -> tasks_pb2.TaskResult:
        """The capture's result once everything it holds is stored under `owner`.

        Artifacts are named `name_prefix` + their name (a session's commands share
        the session's id).
        """
        result = capture.result
        for artifact in capture.artifacts:
            named = dataclasses.replace(artifact, name=name_prefix + artifact.name)
            result.artifacts.append(await self.upload(owner, named))
        pending = capture.comparison
        if pending is not None:
            screenshot = next(
                ref for ref in result.artifacts if ref.kind == tasks_pb2.ARTIFACT_KIND_SCREENSHOT
            )

            async def store_diff(image: bytes) -> tasks_pb2.ArtifactRef:
                diff = CapturedArtifact(
                    name_prefix + DIFF_NAME, tasks_pb2.ARTIFACT_KIND_DIFF, "image/png", image
                )
                ref = await self.upload(owner, diff)
                result.artifacts.append(ref)
                return ref

            comparison = await compare_with_baseline(
                self._saved_state("screenshot.compare"), owner, pending, screenshot, store_diff
            )
            result.comparison.CopyFrom(comparison)
        if capture.profile_to_save is not None:
            await self.save_profile(
                owner, capture.profile_to_save.name, capture.profile_to_save.state
            )
        return result

    def _saved_state(self, field: str) -> SavedState:
        if self._saved is None:
            raise TaskFailure(
                ErrorCode.INTERNAL, f"{field}: this agent has no storage client for it"
            )
        return self._saved
