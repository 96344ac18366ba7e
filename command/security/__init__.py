"""Who may do what (``auth``: roles, users, tokens, ``require``) and the hash-chained audit log (``audit``)."""
from command._lazy import lazy_face

__all__ = ["Principal", "require", "as_principal", "Users", "Tokens", "AuditLog"]
__getattr__, __dir__ = lazy_face(__name__, {
    "Principal": "auth", "require": "auth", "as_principal": "auth", "Users": "auth", "Tokens": "auth",
    "AuditLog": "audit",
})
