"""The root of thermoscope's error types; each layer derives its own family from it."""


class ThermoscopeError(Exception):
    """Base class of every error thermoscope raises on purpose."""


class RadiometryError(ThermoscopeError, ValueError):
    """A radiometric computation cannot be done: missing calibration or impossible parameters."""
