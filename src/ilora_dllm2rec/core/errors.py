"""User-facing errors: one clear line, non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, wrong option).

    Entry points catch it, print its message as ONE line prefixed with ``error:``,
    and exit with status 2. The message must name the file or config key and
    say what to do.
    """


class DataError(UserError):
    """Missing, malformed or inconsistent data files."""


class ConfigError(UserError):
    """Invalid or inconsistent configuration values."""


class ArtifactError(UserError):
    """A checkpoint / teacher export / manifest is missing or does not match this run."""


class TrainingError(UserError):
    """Training diverged (NaN/inf loss) or otherwise cannot continue."""
