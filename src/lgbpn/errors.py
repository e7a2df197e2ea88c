"""The tool's own error types: every failure a user can cause is one of these.

Each message is one line that names the file (or option) and the problem.
"""


class LgbpnError(Exception):
    """Base class of every error the tool raises on bad input."""


class ImageReadError(LgbpnError):
    """An input image is missing, empty, truncated, corrupt or in a format we do not read."""


class WriteError(LgbpnError):
    """A file cannot be written (read-only folder, disk full, a file where a folder should be)."""


class ImageWriteError(WriteError):
    """An output image cannot be written (unsupported format or pixels, output equal to an input, ...)."""


class WeightsError(LgbpnError):
    """A weights file is missing, truncated, unsafe, or does not fit the architecture."""


class ConfigError(LgbpnError):
    """A config file or option value is invalid (unknown key, wrong type, non-positive size)."""


class DataError(LgbpnError):
    """A dataset folder or file does not have the expected layout."""


class InputError(LgbpnError):
    """An image given to the Python API has an unsupported shape, dtype or values (NaN/Inf)."""


def one_line(error: BaseException, limit: int = 200) -> str:
    """Why `error` happened, as one line for a message that names the file or option itself: an
    OSError's own wording (without its errno and file name), else the exception's text, else its type."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(text.split())[:limit]
