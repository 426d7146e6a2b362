"""Every exception the pipeline raises on purpose, in one place that every layer may import.

Each one carries a one-line message naming what is wrong; the command line prints it and exits with status 2.
They are plain exception classes with no imports, so that raising one never drags in another layer.
"""


class PipelineError(Exception):
    """An error the user can fix: printed as one line, exit status 2, nothing half-written."""


class SpecError(PipelineError):
    """A spec that cannot be read or is inconsistent; the message names the file and the field."""


class CardError(ValueError):
    """A card that cannot be read: newer or missing version, missing or mistyped field. One line."""


class LoaderError(ValueError):
    """A model that cannot be loaded or evaluated as asked: tampered, mismatched, out of range, bad input."""


class ReferenceTimeout(TimeoutError):
    """A reference call that ran past reference.timeout: counted as that point's failure (on_error decides)."""
