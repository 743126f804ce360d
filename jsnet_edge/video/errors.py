"""Errors of the video pipeline, so that the CLI prints them as one line (like every
`JSNetEdgeError`) and library users can tell a damaged input from other failures."""

from __future__ import annotations

from jsnet_edge.errors import JSNetEdgeError
from jsnet_edge.video.stats import VideoStats


class VideoError(JSNetEdgeError):
    """A video that cannot be read or written as asked (missing, unsupported, damaged)."""


class IncompleteVideoError(VideoError):
    """The input was damaged: the readable frames were restored and written, some were not.

    Raised after the output exists under its final name, so a caller can still use it;
    `stats` describes the run.
    """

    def __init__(self, message: str, stats: VideoStats) -> None:
        super().__init__(message)
        self.stats = stats
