"""The error tree of ``layers``. ``str(err)`` is the one line shown to the user.

    LayerError(ValueError)
    ├── UnknownLayerError     no layer of that name
    ├── ImportRefused         a registry file refused whole (the message lists refused rows by number)
    └── DataBuildError        the bundled data cannot be built from the shared sources
"""


class LayerError(ValueError):
    """Base of every refusal raised by ``layers``."""


class UnknownLayerError(LayerError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown layer"


class ImportRefused(LayerError):
    def __init__(self, message: str, refused: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.refused = refused or []


class DataBuildError(LayerError):
    pass
