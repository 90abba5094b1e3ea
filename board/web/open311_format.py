"""GeoReport v2's two formats: every Open311 answer as JSON or as XML, by the URL's extension.

The spec's XML is a root element holding one element per item, each item's fields as child
elements (``<services><service><service_code>…``); lists inside an item (a service
definition's attributes and their values) nest the same way. Built with the standard
library's ElementTree, which escapes text; characters XML 1.0 cannot carry at all (control
characters) are dropped rather than sent as a document no parser accepts.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

FORMATS = ("json", "xml")
XML_TYPE = "text/xml; charset=utf-8"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

# Which element holds each item of a list, by the list's element.
ITEM = {"services": "service", "service_requests": "request", "errors": "error",
        "attributes": "attribute", "values": "value", "resolutions": "resolution",
        "service_request_updates": "request_update"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(parent: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _fill(ET.SubElement(parent, key), inner)
    elif isinstance(value, list | tuple):
        tag = ITEM.get(parent.tag, "item")
        for inner in value:
            _fill(ET.SubElement(parent, tag), inner)
    else:
        parent.text = _text(value)


def to_xml(root: str, value: Any) -> bytes:
    """value (a list of items, or one object) as the spec's XML document under root."""
    element = ET.Element(root)
    _fill(element, value)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def respond(fmt: str, root: str, value: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    """The answer in the asked format; root names the XML document element."""
    if fmt == "xml":
        return Response(to_xml(root, value), status, headers=headers, media_type=XML_TYPE)
    return JSONResponse(value, status, headers=headers)


def format_of(path: str) -> str:
    """The format a URL asks for: .xml, else JSON (also for a path with no extension)."""
    return "xml" if path.lower().endswith(".xml") else "json"


def error_for(request: Request, status: int, description: str,
              headers: dict[str, str] | None = None) -> Response:
    """GeoReport v2's error list in the request's format."""
    return respond(format_of(request.url.path), "errors",
                   [{"code": status, "description": description}], status, headers)
