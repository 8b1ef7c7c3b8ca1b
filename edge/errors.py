"""The one root error of the project and its shallow tree."""


class EdgeError(Exception):
    """Root of every error this project raises on purpose."""


class ClosedError(EdgeError, RuntimeError):
    """A component was used after close()."""
