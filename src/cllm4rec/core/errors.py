"""The one exception type users see: a problem with their input, config or files."""


class CLLM4RecError(Exception):
    """A user-facing error; the CLI prints its message on one line and exits non-zero."""
