"""User-facing errors.

Every problem a user can cause (a bad image, checkpoint, option, shape ...) is raised as a
subclass of `JSNetEdgeError` with a message that names the problem and what to do. The CLI
prints that message on one line; library users can catch one base class.
"""

from __future__ import annotations


class JSNetEdgeError(Exception):
    """Base class of the errors whose message is meant for the user."""


class ImageError(JSNetEdgeError):
    """An image that is missing, unreadable, corrupt or of an unsupported kind."""


class ModelError(JSNetEdgeError):
    """A model file or checkpoint that cannot be used as asked."""


class GenotypeError(JSNetEdgeError):
    """A genotype that does not describe a valid network."""


class OptionError(JSNetEdgeError):
    """An option or argument value that is out of range or inconsistent."""


class OutputExistsError(JSNetEdgeError):
    """An output that already exists and would be overwritten."""


class MissingDependencyError(JSNetEdgeError):
    """An optional dependency (extra) that is not installed."""


class TrainingError(JSNetEdgeError):
    """Training that cannot go on (a diverged loss), with what to change."""


class OutputWriteError(JSNetEdgeError):
    """An output that cannot be written: read-only folder, full disk, ..."""


class TargetNotMetError(JSNetEdgeError):
    """A quality target that the result missed; the best result found was still written."""


class DownloadError(JSNetEdgeError):
    """A download that failed (offline, refused, cut short, or not the file expected), with
    what to download by hand and where to put it."""


class DroppedContentWarning(UserWarning):
    """Part of an input that the output does not hold (the later frames of an animated
    image ...): the command line shows it as one `note:` line."""
