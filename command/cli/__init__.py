"""The ``yzt`` command line: ``main`` (the app and its commands), ``response`` (incidents, alerts, the
outbox), ``admin`` (users, tokens, audit) and ``output`` (how it speaks, and exit statuses)."""
from command._lazy import lazy_face

__all__ = ["main"]
__getattr__, __dir__ = lazy_face(__name__, {"main": "main"})
