"""Public warnings: the warned area (``area``), CAP 1.2 messages built and read safely (``cap``,
``ingest``), the durable outbox (``outbox``) and the broadcast channels (``channels/``).

    from command.alerts import build_area, build_alert, Outbox
"""
from command._lazy import lazy_face

__all__ = ["AlertArea", "build_area", "warning_radius_m", "ring_text", "build_alert", "validate",
           "summary_zh", "ingest_file", "Outbox"]
__getattr__, __dir__ = lazy_face(__name__, {
    "AlertArea": "area", "build_area": "area", "warning_radius_m": "area", "ring_text": "area",
    "build_alert": "cap", "validate": "cap", "summary_zh": "cap",
    "ingest_file": "ingest",
    "Outbox": "outbox",
})
