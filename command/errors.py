"""The error tree of ``command``. ``str(err)`` is the one line shown to the user.

    CommandError(ValueError)
    ├── ScenarioError         a drill scenario refused whole: names the file, event (index, line) and field
    ├── AlertError            a warning that may not be built or sent (no confirmation, invalid CAP, Exercise->live)
    │   ├── CapValidationError    the CAP XML fails the XSD; names the first failing element and line
    │   └── CapSignatureError     a CAP message unsigned, tampered with, or signed by an unknown key
    ├── CapIngestError        an incoming CAP file refused (malformed, entities, schema)
    ├── ChannelError          a channel misconfigured (unknown kind, missing url/key)
    ├── SessionError          an action on an incident/session that does not exist or is closed
    ├── PermissionDenied      a user or system without the role, a refused sign-in or token
    └── StoreError            the database is unusable (path, schema version)
        └── IncidentExistsError   a second report of the same incident id

Delivery failures of a channel at run time are not exceptions for the user: the outbox records them,
retries, and dead-letters after the last try.
"""


class CommandError(ValueError):
    """Base of every refusal raised by ``command``."""


class ScenarioError(CommandError):
    pass


class AlertError(CommandError):
    pass


class CapValidationError(AlertError):
    pass


class CapSignatureError(AlertError):
    """The XML-DSig signature of a CAP message is missing, broken or not the trusted signer's; or no
    signing key can be loaded."""


class CapIngestError(CommandError):
    pass


class ChannelError(CommandError):
    pass


class SessionError(CommandError):
    pass


class StoreError(CommandError):
    pass


class StoreUnavailableError(StoreError):
    """The database cannot be reached now (a server restarting, a pool exhausted): try again shortly."""


class IncidentExistsError(StoreError):
    """A second report of an incident id: the database holds one report per incident."""


class PermissionDenied(CommandError):
    """Who may not do what: "user 王五 (role officer) may not alert.send: needs commander", or a refused
    sign-in / token. Never says whether a user name exists."""
