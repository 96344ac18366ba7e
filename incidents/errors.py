"""The error tree of ``incidents``.

Every refusal of user input is one of these; ``str(err)`` is the one clear line shown to the user
(what, where, why). They are formatted only at the edges: the CLI prints the line and exits 2, the
dashboard shows an alert.

    IncidentError(ValueError)
    ├── CoordinateError       a point out of range, an unknown datum, an unparsable "lon,lat"
    ├── LocateError           an address that cannot be found, or lies outside Guangdong
    ├── GeocoderError         the online geocoder failed (network, key, bad answer)
    └── GradingError          an unknown incident type, a negative count
"""


class IncidentError(ValueError):
    """Base of every refusal raised by ``incidents``."""


class CoordinateError(IncidentError):
    pass


class LocateError(IncidentError):
    pass


class GeocoderError(IncidentError):
    pass


class GradingError(IncidentError):
    pass
