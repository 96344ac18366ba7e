"""The HTTP API of the 110/119/120 dispatch systems under ``/api/v1``: routes (``routes``), request and
response models with the OpenAPI document (``schema``), and how state is shown (``views``)."""
from command._lazy import lazy_face

__all__ = ["register_api", "make_api_app", "openapi_document"]
__getattr__, __dir__ = lazy_face(__name__, {
    "register_api": "routes", "make_api_app": "routes", "openapi_document": "schema",
})
