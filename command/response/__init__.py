"""The response (应急响应): the service every door calls, the incident timeline and its fold, the response
group (who is in it, from the duty rules) and its conference.

    from command.response import ResponseService, IncidentState
    svc = ResponseService(store, settings=settings)     # usually built by command.compose
"""
from command._lazy import lazy_face

__all__ = ["ResponseService", "AlertDraft", "IncidentState", "AlertRecord", "Clock", "SystemClock",
           "VirtualClock", "fold", "DutyRules", "roster"]
__getattr__, __dir__ = lazy_face(__name__, {
    "ResponseService": "service", "AlertDraft": "service",
    "IncidentState": "timeline", "AlertRecord": "timeline", "Clock": "timeline", "SystemClock": "timeline",
    "VirtualClock": "timeline", "fold": "timeline",
    "DutyRules": "group", "roster": "group",
})
