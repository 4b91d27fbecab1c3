"""The agent's settings for sessions and screencasts (prefix FARM_AGENT_), part of AgentSettings."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from farm_core.settings import Port, PublicUrl


class SessionSettings(BaseSettings):
    """Where sessions are served, how their browsers are kept, and what screencasts may hold."""

    model_config = SettingsConfigDict(env_prefix="FARM_AGENT_", extra="ignore", frozen=True)

    session_port: Port = Field(
        default=7150,
        description="Port of the sessions' CDP and live view endpoints, which Envoy reaches; "
        "0 picks a free one.",
    )
    session_host: str = Field(
        default="",
        description="Address the session endpoints listen on; empty: the farm's host.",
    )
    session_advertise_host: str = Field(
        default="",
        description="Address Envoy reaches the session endpoints at (given in the answer to "
        "each open order; the scheduler puts it in the session's route); empty: the listen "
        "address.",
    )
    public_url: PublicUrl = Field(
        default="http://127.0.0.1:8080",
        validation_alias=AliasChoices("FARM_AGENT_PUBLIC_URL", "FARM_PUBLIC_URL"),
        description="The edge's address as clients reach it; a session's DevTools discovery "
        "(json/version) names its CDP socket there (ws:// or wss://).",
    )
    session_spare_browsers: int = Field(
        default=1,
        ge=0,
        le=8,
        description="Session browsers kept started ahead, so that opening a session with the "
        "default screen does not wait for Chromium; 0 starts each when its session opens.",
    )
    session_spare_keep_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long spare session browsers are kept after the agent starts or a "
        "session opens here; then they close (each holds about 200 MiB) until the next "
        "session, which waits for its browser. 0: kept always.",
    )
    session_place_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a session being opened waits for a place held by a task.",
    )
    session_dialog_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a session's dialog (alert, confirm, prompt) waits for a "
        "command's or an attached client's answer before the agent dismisses it.",
    )
    session_check_seconds: float = Field(
        default=1.0, gt=0, description="How often sessions' idle and lifetime clocks are read."
    )
    session_drain_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On drain, how long open sessions may go on before they are closed "
        "(AGENT_DRAINING).",
    )
    screencast_max_frames: int = Field(
        default=6000,
        ge=1,
        description="Frames a task's or a session's screencast keeps; later ones are dropped.",
    )
    screencast_max_frame_mb: int = Field(
        default=512,
        ge=1,
        description="MiB of JPEG frames a screencast keeps on disk until it is encoded.",
    )
    screencast_max_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Seconds a screencast records; frames drawn later are dropped.",
    )
    screencast_max_video_mb: int = Field(
        default=56,
        ge=1,
        description="A screencast's video ends at this size in MiB; keep it below storage's "
        "largest artifact.",
    )
    screencast_encode_seconds: float = Field(
        default=180.0,
        gt=0,
        description="Time ffmpeg gets to encode one screencast; then the video is not stored.",
    )
