"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class UniadError(Exception):
    """Bad input or environment: the message names the file and the fix, no traceback needed."""
