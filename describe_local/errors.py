"""Errors that reach the user.

Every error the CLI and the server report to a person derives from
:class:`DescribeLocalError`; its message is one line that says what went wrong
and, where there is one, what to do about it. Anything else is a bug.
"""

from __future__ import annotations


class DescribeLocalError(Exception):
    """An error with a message meant for the user."""

    exit_code = 1


class ConfigError(DescribeLocalError):
    """A setting has a bad value."""

    exit_code = 2


class ImageError(DescribeLocalError):
    """A file is not an image we can describe (not an image, empty, truncated, too big)."""

    exit_code = 3


class ModelNotInstalled(DescribeLocalError):
    """A model the user asked for is not in the model store."""

    exit_code = 4


class GalleryError(DescribeLocalError):
    """The known-faces gallery refused an operation (bad name, no face, several faces)."""

    exit_code = 5


class OfflineError(DescribeLocalError):
    """A download was needed and the network is unreachable."""

    exit_code = 6
