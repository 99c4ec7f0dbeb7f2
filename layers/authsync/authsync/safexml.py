"""A small, hardened XML reader for WeCom's flat callback documents.

WeCom callback XML is a root ``<xml>`` whose children hold text or one CDATA
section, with shallow nesting in a few events (``ExtraInfo``). Reading it is on
the ingest hot path, where a general parser costs as much as the crypto, so there
are two readers with one result:

* a strict scanner (plain ``str.find``, no regex) for exactly that shape: flat
  children, ASCII names, printable text without ``&``. Anything else -- a prolog,
  a DOCTYPE, comments, attributes, entities, nesting, repeated names, control or
  non-printable characters -- makes it give up, never guess;
* the C expat parser with DTDs, entity declarations and external entities refused
  (no billion laughs, no XXE) and size, depth and element-count limits, which
  reads whatever the scanner gave up on and is the only judge of invalid input.

The property tests check that both give the same answer wherever the scanner
answers at all.
"""

from __future__ import annotations

from typing import Any, NoReturn
from xml.parsers import expat

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "XmlError", "parse", "parse_with_expat"]

MAX_DEPTH = 6
MAX_ELEMENTS = 512

_WHITESPACE = " \t\r\n"
_CDATA_OPEN = "<![CDATA["
_CDATA_CLOSE = "]]>"


class XmlError(Exception):
    """The document is malformed, too large, or uses a forbidden XML feature."""

    reason = "xml"


class _Repeated(list[Any]):
    """A list built from repeated sibling elements; a plain ``list`` to every caller."""


def parse(data: bytes, *, max_bytes: int, root: str = "xml") -> dict[str, Any]:
    """Parse ``data`` into ``{child: text | dict | list}`` for the children of ``root``.

    Leaf elements become their text; elements with children become dicts; a name
    repeated among siblings becomes a list. Attributes are ignored (WeCom sends none).
    """
    if len(data) > max_bytes:
        raise XmlError(f"document larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""  # let expat report the encoding error precisely
    fast = _scan(text, root) if text else None
    return fast if fast is not None else parse_with_expat(data, max_bytes=max_bytes, root=root)


def _scan(s: str, root: str) -> dict[str, Any] | None:
    """Read the flat common case, or return ``None`` to defer to expat.

    Written for speed (it runs twice per callback): string methods and limits are bound to
    locals, since attribute and global look-ups would otherwise dominate the loop.
    """
    whitespace = _WHITESPACE
    s = s.strip(whitespace)
    opening, closing_root = f"<{root}>", f"</{root}>"
    if not (s.startswith(opening) and s.endswith(closing_root)):
        return None
    find, startswith = s.find, s.startswith
    cdata_open, cdata_close = _CDATA_OPEN, _CDATA_CLOSE
    limit = MAX_ELEMENTS - 1
    i, end = len(opening), len(s) - len(closing_root)
    out: dict[str, Any] = {}
    while True:
        if i > end:
            return None
        char = s[i]
        while char in whitespace:  # s[end] is "<", so this stops by then
            i += 1
            char = s[i]
        if i == end:
            return out
        if char != "<":
            return None
        j = find(">", i)
        name = s[i + 1 : j]
        if not (name.isalnum() and name.isascii()) or name[0].isdigit() or name in out:
            return None
        i = j + 1
        if startswith(cdata_open, i):
            k = find(cdata_close, i + 9)
            if k < 0:
                return None
            value = s[i + 9 : k]
            i = k + 3
        else:
            k = find("<", i)
            value = s[i:k]
            if "&" in value or "]]>" in value:
                return None
            i = k
        closing = f"</{name}>"
        if not startswith(closing, i) or not value.isprintable() or len(out) >= limit:
            return None
        out[name] = value
        i += len(closing)


def _forbidden(*_: object) -> NoReturn:
    raise XmlError("DTDs and entity declarations are not allowed")


def parse_with_expat(data: bytes, *, max_bytes: int, root: str = "xml") -> dict[str, Any]:
    """The general, hardened reader (see the module docstring)."""
    if len(data) > max_bytes:
        raise XmlError(f"document larger than {max_bytes} bytes")
    # The declared encoding is overridden with UTF-8 (expat still honours a UTF-16 BOM);
    # either way DTDs and entity declarations are refused by the handlers below.
    parser = expat.ParserCreate("utf-8")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
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
