"""safexml: expat, hardened, answering exactly what an independent reader would on the safe subset."""

from __future__ import annotations

import string
import time
from typing import Any
from xml.dom import expatbuilder
from xml.dom.minidom import Element, Text
from xml.parsers import expat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authsync.wecom.safexml import MAX_DEPTH, MAX_ELEMENTS, XmlError, parse

LIMIT = 1 << 20


def outcome(reader: Any, data: bytes, root: str = "xml") -> tuple[str, Any]:
    """``("ok", result)`` or ``("error", None)``: any other exception fails the test."""
    try:
        return "ok", reader(data, max_bytes=LIMIT, root=root)
    except XmlError:
        return "error", None


def _tree(element: Element) -> str | dict[str, Any]:
    children = [node for node in element.childNodes if isinstance(node, Element)]
    if not children:
        return "".join(node.data for node in element.childNodes if isinstance(node, Text))  # CDATA is Text too
    out: dict[str, Any] = {}
    for child in children:
        value = _tree(child)
        if child.tagName not in out:
            out[child.tagName] = value
        elif isinstance(out[child.tagName], list):
            out[child.tagName].append(value)
        else:
            out[child.tagName] = [out[child.tagName], value]
    return out


def _depth(element: Element) -> int:
    return 1 + max((_depth(node) for node in element.childNodes if isinstance(node, Element)), default=0)


def oracle(data: bytes, *, max_bytes: int, root: str = "xml") -> dict[str, Any]:
    """The same answer by other means, for documents without DTDs or non-UTF-8 encodings: a
    ``minidom`` tree (built without namespaces, as ``parse`` reads names), turned into the dict."""
    if len(data) > max_bytes:
        raise XmlError("size")
    try:
        element = expatbuilder.parseString(data, namespaces=False).documentElement
    except expat.ExpatError:
        raise XmlError("malformed") from None
    if element is None or element.tagName != root:
        raise XmlError("root")
    if len(element.getElementsByTagName("*")) + 1 > MAX_ELEMENTS or _depth(element) > MAX_DEPTH:
        raise XmlError("limits")
    tree = _tree(element)
    return {} if isinstance(tree, str) else tree


# -- documents WeCom could plausibly send (and some it never would) --------------------------------

WECOM_NAMES = ["ToUserName", "SuiteId", "InfoType", "TimeStamp", "AuthCode", "AuthCorpId", "State", "OpenKfId"]
ODD_NAMES = ["a_b", "a-b", "a.b", "名字", "xml", "Z9", "_x", "ns:a"]
NAMES = (
    st.sampled_from(WECOM_NAMES)
    | st.sampled_from(ODD_NAMES)
    | st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,6}", fullmatch=True)
)

SAFE_CHARS = string.ascii_letters + string.digits + " .,:;!?/-_=+()[]{}'\"#@*%$^~|" + "你好企业微信授权票据éü😀"
DANGEROUS = [
    "&",
    "<",
    ">",
    "]]>",
    " ",
    "\t",
    "\n",
    "\r",
    "\x01",
    "\x0b",
    "\x7f",
    "\u0085",
    "\u00a0",
    "\u2028",
    "\ufeff",
]
TEXT = st.text(SAFE_CHARS, max_size=10) | st.lists(
    st.text(SAFE_CHARS, max_size=3) | st.sampled_from(DANGEROUS) | st.sampled_from(["&amp;", "&#20320;"]), max_size=5
).map("".join)
PRINTABLE = st.sampled_from(SAFE_CHARS + "&<>") | st.characters(codec="utf-8", categories=["L", "N", "P", "S"])
WHITESPACE = st.sampled_from(["", "", " ", "\n", "\t", "\r\n", "\n  ", " \t\n "])
ENTITY = st.sampled_from(
    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#20320;", "&#x597D;", "&#10;", "&#0;", "&nope;"]
)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@st.composite
def rendered_text(draw: st.DrawFn) -> str:
    """One element's content as WeCom (or a fuzzer) might write it."""
    value = draw(TEXT)
    style = draw(st.sampled_from(["cdata", "cdata", "escaped", "escaped", "raw", "entities", "mixed"]))
    if style == "cdata":
        return f"<![CDATA[{value}]]>"
    if style == "escaped":
        return escape(value)
    if style == "raw":
        return value
    if style == "entities":
        parts = draw(st.lists(st.one_of(TEXT.map(escape), ENTITY), max_size=4))
        return "".join(parts)
    return escape(value) + f"<![CDATA[{draw(TEXT)}]]>" + escape(draw(TEXT))


def attributes(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(["", "", "", ' a="1"', " b='x&amp;y'", ' c="你"']))


def render(draw: st.DrawFn, name: str, depth: int) -> str:
    attrs = attributes(draw)
    if depth > 0 and draw(st.integers(0, 4)) == 0:
        children = draw(st.lists(NAMES, max_size=4))
        inner = "".join(draw(WHITESPACE) + render(draw, child, depth - 1) for child in children) + draw(WHITESPACE)
    elif draw(st.integers(0, 15)) == 0:
        return f"<{name}{attrs}/>"
    else:
        inner = draw(rendered_text())
    if draw(st.integers(0, 20)) == 0:
        inner = f"<!-- {draw(TEXT).replace('-', '')} -->" + inner
    return f"<{name}{attrs}>{inner}</{name}>"


@st.composite
def wecom_like_documents(draw: st.DrawFn) -> bytes:
    root = draw(st.sampled_from(["xml", "xml", "xml", "xml", "root"]))
    depth = draw(st.integers(0, 3))
    names = draw(st.lists(NAMES, max_size=10))
    body = "".join(draw(WHITESPACE) + render(draw, name, depth) for name in names) + draw(WHITESPACE)
    if draw(st.integers(0, 10)) == 0:
        body += f"<!--{draw(TEXT).replace('-', '')}-->"
    prolog = draw(
        st.sampled_from(["", "", "", "", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>\n', "\ufeff"])
    )
    doc = f"{prolog}{draw(WHITESPACE)}<{root}{attributes(draw)}>{body}</{root}>{draw(WHITESPACE)}"
    if draw(st.integers(0, 30)) == 0:
        doc += draw(st.sampled_from(["<xml/>", "junk", "<!-- c -->", "\x00"]))
    return doc.encode("utf-8")


ASCII_NAME = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_letters),
    st.text(string.ascii_letters + string.digits, max_size=12),
)
CDATA_VALUE = st.text(PRINTABLE, max_size=30).filter(lambda v: "]]>" not in v)
PLAIN_VALUE = st.text(PRINTABLE.filter(lambda c: c not in "&<"), max_size=30).filter(lambda v: "]]>" not in v)


@st.composite
def flat_documents(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """The flat common case with its answer written down: unique ASCII names, CDATA or plain text."""
    names = draw(st.lists(ASCII_NAME, unique=True, max_size=12))
    expected: dict[str, str] = {}
    parts = []
    for name in names:
        if draw(st.booleans()):
            value = draw(CDATA_VALUE)
            content = f"<![CDATA[{value}]]>"
        else:
            value = content = draw(PLAIN_VALUE)
        expected[name] = value
        parts.append(draw(WHITESPACE) + f"<{name}>{content}</{name}>")
    doc = draw(WHITESPACE) + "<xml>" + "".join(parts) + draw(WHITESPACE) + "</xml>" + draw(WHITESPACE)
    return doc.encode("utf-8"), expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=wecom_like_documents())
def test_parse_answers_like_element_tree_on_wecom_like_documents(doc: bytes) -> None:
    for root in ("xml", "root"):
        assert outcome(parse, doc, root) == outcome(oracle, doc, root)


@settings(max_examples=200, deadline=None)
@given(case=flat_documents())
def test_flat_common_case_gives_the_written_down_answer(case: tuple[bytes, dict[str, str]]) -> None:
    doc, expected = case
    result = parse(doc, max_bytes=LIMIT)
    assert result == expected
    assert type(result) is dict
    assert all(type(value) is str for value in result.values())


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_xml_error(data: bytes) -> None:
    wrapped = b"<xml>" + data + b"</xml>"
    assert outcome(parse, wrapped) == outcome(oracle, wrapped)
    for doc in (data, wrapped):
        if outcome(parse, doc)[0] == "ok":
            assert "\x00" not in doc.decode("utf-8")  # what is accepted is the UTF-8 text that gets queued


# -- what the reader returns ------------------------------------------------------------------------

SUITE_TICKET = (
    b"<xml><SuiteId><![CDATA[ww4asffe99e54c0f4c]]></SuiteId>\n"
    b"<InfoType> <![CDATA[suite_ticket]]> </InfoType>\n"
    b"<TimeStamp>1403610513</TimeStamp>\n"
    b"<SuiteTicket><![CDATA[asdfasfdasdfasdf]]></SuiteTicket></xml>"
)


def test_real_suite_ticket_push() -> None:
    doc = SUITE_TICKET.replace(b"> <![CDATA[suite_ticket]]> <", b"><![CDATA[suite_ticket]]><")
    assert parse(doc, max_bytes=4096) == {
        "SuiteId": "ww4asffe99e54c0f4c",
        "InfoType": "suite_ticket",
        "TimeStamp": "1403610513",
        "SuiteTicket": "asdfasfdasdfasdf",
    }


def test_text_around_cdata_is_kept() -> None:
    assert parse(SUITE_TICKET, max_bytes=4096)["InfoType"] == " suite_ticket "


def test_repeated_siblings_become_a_list_and_nesting_a_dict() -> None:
    doc = (
        "<xml><InfoType>create_auth</InfoType>"
        "<ExtraInfo><AuthOpenKfIdList><OpenKfId>wk1</OpenKfId><OpenKfId>wk2</OpenKfId><OpenKfId>wk3</OpenKfId>"
        "</AuthOpenKfIdList><Note>单个</Note></ExtraInfo>"
        "<Tag>a</Tag><Tag><Inner>b</Inner></Tag></xml>"
    ).encode()
    result = parse(doc, max_bytes=4096)
    assert result == {
        "InfoType": "create_auth",
        "ExtraInfo": {"AuthOpenKfIdList": {"OpenKfId": ["wk1", "wk2", "wk3"]}, "Note": "单个"},
        "Tag": ["a", {"Inner": "b"}],
    }
    assert type(result["ExtraInfo"]) is dict
    assert isinstance(result["Tag"], list)


def test_entities_and_character_references_are_decoded() -> None:
    doc = b"<xml><A>a &amp; b &lt;c&gt; &#20320;&#x597D; &quot;q&quot; &apos;</A></xml>"
    assert parse(doc, max_bytes=4096) == {"A": 'a & b <c> 你好 "q" \''}


def test_attributes_prolog_and_comments_are_ignored() -> None:
    doc = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<!-- c --><xml lang="zh"><A id="1">x<!-- y --></A></xml>\n<!-- z -->'
    )
    assert parse(doc, max_bytes=4096) == {"A": "x"}


def test_empty_and_leaf_roots() -> None:
    assert parse(b"<xml></xml>", max_bytes=100) == {}
    assert parse(b"<xml/>", max_bytes=100) == {}
    assert parse(b"<xml> \n </xml>", max_bytes=100) == {}
    assert parse(b"<xml>text only</xml>", max_bytes=100) == {}
    assert parse(b"<xml><A/><B></B></xml>", max_bytes=100) == {"A": "", "B": ""}


def test_custom_root() -> None:
    assert parse(b"<envelope><A>1</A></envelope>", max_bytes=100, root="envelope") == {"A": "1"}
    with pytest.raises(XmlError, match="root"):
        parse(b"<xml><A>1</A></xml>", max_bytes=100, root="envelope")


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # Each of these made the old hand-written scanner defer to expat; pinned here by hand.
        ('<?xml version="1.0"?><xml><A>1</A></xml>', {"A": "1"}),
        ("<xml><!-- c --><A>1</A></xml>", {"A": "1"}),
        ('<xml><A b="1">1</A></xml>', {"A": "1"}),
        ('<xml a="1"><A>1</A></xml>', {"A": "1"}),
        ("<xml><A>1&amp;2</A></xml>", {"A": "1&2"}),
        ("<xml><A><B>1</B></A></xml>", {"A": {"B": "1"}}),
        ("<xml><A>1</A><A>2</A></xml>", {"A": ["1", "2"]}),
        ("<xml><A>line\nbreak</A></xml>", {"A": "line\nbreak"}),
        ("<xml><A>tab\there</A></xml>", {"A": "tab\there"}),
        ("<xml><A>cr\rhere</A></xml>", {"A": "cr\nhere"}),  # XML end-of-line normalisation
        ("<xml><A>crlf\r\nhere</A></xml>", {"A": "crlf\nhere"}),
        ("<xml><A><![CDATA[x\r\ny]]></A></xml>", {"A": "x\ny"}),
        ("<xml><A>\u2028</A></xml>", {"A": "\u2028"}),
        ("<xml><A><![CDATA[x\ny]]></A></xml>", {"A": "x\ny"}),
        ("<xml><名字>1</名字></xml>", {"名字": "1"}),
        ("<xml><a_b>1</a_b></xml>", {"a_b": "1"}),
        ("<xml><A/></xml>", {"A": ""}),
        ("<xml><A >1</A></xml>", {"A": "1"}),
        ("<xml><A>x<![CDATA[y]]></A></xml>", {"A": "xy"}),
        ("<xml><A><![CDATA[x]]> </A></xml>", {"A": "x "}),
        ("<xml><A> </A></xml>", {"A": " "}),
        ("<xml>text<A>1</A></xml>", {"A": "1"}),
        ("<xml><A>1</A></xml >", {"A": "1"}),
        ("\ufeff<xml><A>1</A></xml>", {"A": "1"}),
        ("\n <xml>\n<A>1</A>\r\n</xml>\n", {"A": "1"}),
    ],
)
def test_edge_cases_read_exactly(doc: str, expected: dict[str, Any]) -> None:
    assert parse(doc.encode(), max_bytes=4096) == expected


@pytest.mark.parametrize(
    "doc",
    [
        b"<root><A>1</A></root>",
        b"<XML><A>1</A></XML>",
        b"<xml><A>1</A></xml><xml/>",
        b"<xml><A>1</A></xml>junk",
        b"<xml><A>1</A>",
        b"<xml><A>1</B></xml>",
        b"",
        b"   ",
        b"plain text",
        b"<xml><A>\x01</A></xml>",
        b"<xml><A>a]]>b</A></xml>",
        b"<xml><xml>a</xml>",
        b"<xml><A>1</A></xml></xml>",
        b"<xml><A>1</A><</xml>",
        b"<xml><A><![CDATA[1</A></xml>",
        b"<xml><A>1</A></xml>\x00",
        b"<xml><A>1\x00</A></xml>",
        b"<xml><1a>1</1a></xml>",
        b'<?xml version="1.0"?><?xml version="1.0"?><xml/>',
        b' <?xml version="1.0"?><xml/>',
    ],
)
def test_malformed_or_wrong_root_rejected(doc: bytes) -> None:
    with pytest.raises(XmlError):
        parse(doc, max_bytes=4096)


def test_xml_error_reason() -> None:
    with pytest.raises(XmlError) as info:
        parse(b"<xml>", max_bytes=4096)
    assert info.value.reason == "xml"


# -- hardening -------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><SuiteTicket>&lol9;</SuiteTicket></xml>"""


def test_billion_laughs_rejected_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(XmlError, match="DTD"):
        parse(BILLION_LAUGHS, max_bytes=LIMIT)
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "doc",
    [
        # XXE via an external general entity.
        b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><A>&xxe;</A></xml>',
        # External DTD subset.
        b'<!DOCTYPE xml SYSTEM "http://169.254.169.254/latest/meta-data/"><xml><A>1</A></xml>',
        b'<!DOCTYPE xml PUBLIC "-//X//Y" "file:///etc/passwd"><xml><A>1</A></xml>',
        # Parameter entities, internal and external.
        b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml/>',
        b"<!DOCTYPE xml [<!ENTITY % p \"<!ENTITY e 'x'>\"> %p;]><xml><A>&e;</A></xml>",
        # Unparsed entity, and a harmless-looking internal one.
        b'<!DOCTYPE xml [<!ENTITY u SYSTEM "x" NDATA png>]><xml/>',
        b'<!DOCTYPE xml [<!ENTITY t "ticket">]><xml><A>&t;</A></xml>',
        # An empty DOCTYPE is still a DTD.
        b"<!DOCTYPE xml []><xml><A>1</A></xml>",
        b"<!DOCTYPE xml><xml><A>1</A></xml>",
    ],
)
def test_dtds_and_entity_declarations_rejected(doc: bytes) -> None:
    with pytest.raises(XmlError, match="DTD"):
        parse(doc, max_bytes=LIMIT)


def test_undefined_entity_rejected() -> None:
    with pytest.raises(XmlError, match="undefined entity"):
        parse(b"<xml><A>&ticket;</A></xml>", max_bytes=LIMIT)


def test_size_limit() -> None:
    doc = b"<xml><A>" + b"x" * 100 + b"</A></xml>"
    assert parse(doc, max_bytes=len(doc)) == {"A": "x" * 100}
    with pytest.raises(XmlError, match="larger than"):
        parse(doc, max_bytes=len(doc) - 1)


def nested(depth: int) -> bytes:
    """``depth`` elements nested inside each other, the root included."""
    names = ["xml"] + [f"L{i}" for i in range(1, depth)]
    return ("".join(f"<{n}>" for n in names) + "v" + "".join(f"</{n}>" for n in reversed(names))).encode()


def test_depth_limit() -> None:
    result: Any = parse(nested(MAX_DEPTH), max_bytes=LIMIT)
    for i in range(1, MAX_DEPTH - 1):
        result = result[f"L{i}"]
    assert result == {f"L{MAX_DEPTH - 1}": "v"}
    with pytest.raises(XmlError, match="deep"):
        parse(nested(MAX_DEPTH + 1), max_bytes=LIMIT)
    with pytest.raises(XmlError, match="deep"):
        parse(nested(10_000), max_bytes=LIMIT)


def test_element_count_limit_flat() -> None:
    # The root counts: MAX_ELEMENTS - 1 children is the most a document may have.
    fits = ("<xml>" + "".join(f"<E{i}>{i}</E{i}>" for i in range(MAX_ELEMENTS - 1)) + "</xml>").encode()
    assert parse(fits, max_bytes=LIMIT) == {f"E{i}": str(i) for i in range(MAX_ELEMENTS - 1)}
    too_many = ("<xml>" + "".join(f"<E{i}>{i}</E{i}>" for i in range(MAX_ELEMENTS)) + "</xml>").encode()
    with pytest.raises(XmlError, match="too many"):
        parse(too_many, max_bytes=LIMIT)


def test_element_count_limit_with_repeated_and_nested_elements() -> None:
    fits = ("<xml><L>" + "<I>x</I>" * (MAX_ELEMENTS - 2) + "</L></xml>").encode()
    assert len(parse(fits, max_bytes=LIMIT)["L"]["I"]) == MAX_ELEMENTS - 2
    too_many = ("<xml><L>" + "<I>x</I>" * (MAX_ELEMENTS - 1) + "</L></xml>").encode()
    with pytest.raises(XmlError, match="too many"):
        parse(too_many, max_bytes=LIMIT)


# -- encodings: UTF-8 only, so what is accepted decodes as the UTF-8 text that gets queued -----------


@pytest.mark.parametrize(
    "doc",
    [
        b"<xml><A>\xe9t\xe9</A></xml>",  # Latin-1
        "<xml><A>企业微信</A></xml>".encode("gbk"),
        b"<xml><A>\xed\xa0\x80</A></xml>",  # an encoded surrogate
        b"<xml><A>\xc0\xbc</A></xml>",  # an overlong "<"
        b"<xml><A>\xf4\x90\x80\x80</A></xml>",  # beyond U+10FFFF
    ],
)
def test_undecodable_bytes_rejected(doc: bytes) -> None:
    with pytest.raises(XmlError):
        parse(doc, max_bytes=LIMIT)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("declaration", ["", '<?xml version="1.0" encoding="UTF-16"?>', '<?xml version="1.0"?>'])
def test_utf16_and_utf32_documents_rejected(codec: str, declaration: str) -> None:
    # Expat would read UTF-16 (with a BOM, or sniffed from "<\0"), but what it would accept must
    # also decode as UTF-8 downstream: before this was refused, a signed UTF-16 event answered 503.
    doc = (declaration + "<xml><InfoType>change_auth</InfoType><A>你好</A></xml>").encode(codec)
    with pytest.raises(XmlError):
        parse(doc, max_bytes=LIMIT)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_encoded_documents_cannot_smuggle_a_doctype(codec: str) -> None:
    evil = (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY t "x">]>'
        "<xml><A>&xxe;</A><B>&t;</B></xml>"
    ).encode(codec)
    with pytest.raises(XmlError):
        parse(evil, max_bytes=LIMIT)


@pytest.mark.parametrize("encoding", ["UTF-8", "utf-8", "Utf-8"])
def test_utf8_declaration_accepted(encoding: str) -> None:
    doc = f'<?xml version="1.0" encoding="{encoding}"?><xml><A>你好</A></xml>'.encode()
    assert parse(doc, max_bytes=LIMIT) == {"A": "你好"}
    assert parse(b"\xef\xbb\xbf" + doc, max_bytes=LIMIT) == {"A": "你好"}


@pytest.mark.parametrize(
    "encoding", ["UTF-16", "UTF-16LE", "UTF-7", "ISO-8859-1", "US-ASCII", "GBK", "GB18030", "utf8", "bogus", ""]
)
def test_any_other_declared_encoding_rejected(encoding: str) -> None:
    # Even when the bytes are UTF-8: the document would mean something else to a reader honouring it.
    doc = f'<?xml version="1.0" encoding="{encoding}"?><xml><A>plain</A></xml>'.encode()
    with pytest.raises(XmlError):
        parse(doc, max_bytes=LIMIT)


def test_declared_utf7_cannot_smuggle_markup() -> None:
    # In UTF-7 "+ADw-" is "<".
    doc = b'<?xml version="1.0" encoding="UTF-7"?><xml><A>+ADw-!ENTITY x SYSTEM "file:///etc/passwd"+AD4-</A></xml>'
    with pytest.raises(XmlError, match="UTF-8"):
        parse(doc, max_bytes=LIMIT)
