"""A small, hardened XML reader for WeCom's callback documents: expat, and nothing else.

WeCom callback XML is a root ``<xml>`` whose children hold text or one CDATA
section, with shallow nesting in a few events (``ExtraInfo``). It is read by the
standard library's C parser, expat, hardened:

* DTDs (``<!DOCTYPE``), entity declarations and external entities are refused
  (no billion laughs, no XXE); parameter entities are never parsed;
* the document must be UTF-8: undecodable bytes, NUL bytes (which would let expat
  sniff BOM-less UTF-16) and an encoding declaration naming anything else are
  refused, so whatever is accepted also decodes as the UTF-8 text that is queued;
* size (``max_bytes``), depth (``MAX_DEPTH``) and element-count (``MAX_ELEMENTS``)
  limits.

There used to be a hand-written scanner in front of expat for the flat common
case. It saved a few microseconds on a webhook answered in hundreds against a
1,000 ms deadline: speed nobody pays for, bought with a second parser in security
code. Every answer comes from expat now.
"""

from __future__ import annotations

from typing import Any, NoReturn
from xml.parsers import expat

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "XmlError", "parse"]

MAX_DEPTH = 6
MAX_ELEMENTS = 512


class XmlError(Exception):
    """The document is malformed, too large, or uses a forbidden XML feature."""

    reason = "xml"


class _Repeated(list[Any]):
    """A list built from repeated sibling elements; a plain ``list`` to every caller."""


def _forbidden(*_: object) -> NoReturn:
    raise XmlError("DTDs and entity declarations are not allowed")


def _declaration(_version: str, encoding: str | None, _standalone: int) -> None:
    if encoding is not None and encoding.lower() != "utf-8":
        raise XmlError("encoding must be UTF-8")


def parse(data: bytes, *, max_bytes: int, root: str = "xml") -> dict[str, Any]:
    """Parse ``data`` into ``{child: text | dict | list}`` for the children of ``root``.

    Leaf elements become their text; elements with children become dicts; a name
    repeated among siblings becomes a list. Attributes are ignored (WeCom sends none).
    """
    if len(data) > max_bytes:
        raise XmlError(f"document larger than {max_bytes} bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise XmlError("document is not UTF-8") from None
    if b"\x00" in data:  # never legal XML; in front of "<" it makes expat read UTF-16
        raise XmlError("malformed XML: NUL byte")
    # The declared encoding is overridden with UTF-8, and any other declaration refused.
    parser = expat.ParserCreate("utf-8")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.XmlDeclHandler = _declaration
    parser.StartDoctypeDeclHandler = _forbidden
    parser.EntityDeclHandler = _forbidden
    parser.UnparsedEntityDeclHandler = _forbidden
    parser.ExternalEntityRefHandler = _forbidden

    # Stack of (children, text parts); the document node sits at the bottom.
    stack: list[tuple[dict[str, Any], list[str]]] = [({}, [])]
    count = 0

    def start(_name: str, _attrs: object) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS:
            raise XmlError("too many elements")
        if len(stack) > MAX_DEPTH:
            raise XmlError("document nested too deeply")
        stack.append(({}, []))

    def end(name: str) -> None:
        children, text = stack.pop()
        value: str | dict[str, Any] = children if children else "".join(text)
        siblings = stack[-1][0]
        previous = siblings.get(name)
        if previous is None:
            siblings[name] = value
        elif isinstance(previous, _Repeated):
            previous.append(value)
        else:
            siblings[name] = _Repeated((previous, value))

    def chars(text: str) -> None:
        stack[-1][1].append(text)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise XmlError(f"malformed XML: {expat.ErrorString(exc.code)}") from None
    document = stack[0][0]
    body = document.get(root)
    if len(document) != 1 or body is None or isinstance(body, list):
        raise XmlError(f"root element must be <{root}>")
    return {} if isinstance(body, str) else body
