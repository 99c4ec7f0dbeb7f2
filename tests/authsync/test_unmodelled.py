"""domain.unmodelled: what is kept of a callback we cannot act on (no secrets, bounded); bounded dimensions."""

from __future__ import annotations

import pytest

from authsync.domain.unmodelled import MAX_KEPT_BYTES, REDACTED, BoundedDimension, is_secret_name, keep
from authsync.wecom import safexml

SECRET = "S3CRET-value-0123456789"


def kept(document: str) -> tuple[str | None, tuple[str, ...], bool]:
    message = document.encode()
    result = keep("wwsuite", message, safexml.parse(message, max_bytes=1 << 20))
    return result.document, result.redacted, result.truncated


@pytest.mark.parametrize(
    "name", ["AuthCode", "SuiteTicket", "PermanentCode", "Token", "AccessToken", "suite_secret", "SessionKey"]
)
def test_secret_looking_names(name: str) -> None:
    assert is_secret_name(name)
    document, redacted, _ = kept(f"<xml><InfoType>x</InfoType><{name}><![CDATA[{SECRET}]]></{name}></xml>")
    assert document is not None
    assert SECRET not in document
    assert f"<{name}>{REDACTED}</{name}>" in document
    assert redacted == (name,)


@pytest.mark.parametrize("name", ["InfoType", "AuthCorpId", "AuthType", "ChangeType", "UserID", "OpenKfId"])
def test_ordinary_names_are_kept_verbatim(name: str) -> None:
    assert not is_secret_name(name)
    text = f"<xml><{name}><![CDATA[value]]></{name}></xml>"
    assert kept(text) == (text, (), False)


def test_a_cdata_trick_that_defeats_the_redaction_withholds_the_document() -> None:
    # The first </AuthCode> is inside CDATA: a naive redaction would leave the rest of the secret.
    document, redacted, _ = kept(f"<xml><AuthCode><![CDATA[a</AuthCode>{SECRET}]]></AuthCode></xml>")
    assert document is None
    assert redacted == ("AuthCode",)


def test_repeated_and_nested_secrets_are_all_redacted() -> None:
    text = (
        f"<xml><Info><Token>{SECRET}1</Token><Token>{SECRET}2</Token></Info>"
        f"<authcode>{SECRET}3</authcode><AuthCorpId>ww1</AuthCorpId></xml>"
    )
    document, redacted, _ = kept(text)
    assert document is not None
    assert SECRET not in document
    assert "<AuthCorpId>ww1</AuthCorpId>" in document
    assert redacted == ("Token", "authcode")


def test_large_documents_are_cut_on_a_character_boundary() -> None:
    text = "<xml><Payload>" + "企" * MAX_KEPT_BYTES + "</Payload></xml>"
    document, _, truncated = kept(text)
    assert truncated
    assert document is not None
    assert len(document.encode()) <= MAX_KEPT_BYTES
    assert document.startswith("<xml><Payload>企")


def test_the_key_is_the_same_for_the_same_document_and_differs_by_suite() -> None:
    message = b"<xml><InfoType>x</InfoType></xml>"
    fields = safexml.parse(message, max_bytes=1024)
    assert keep("a", message, fields).key == keep("a", message, fields).key != keep("b", message, fields).key


def test_bounded_dimension_caps_length_characters_and_cardinality() -> None:
    dimension = BoundedDimension(limit=3, max_length=8)
    assert dimension("change_auth") == "change_a"
    assert dimension(" a b/c ") == "a_b_c"
    assert dimension(None) == "unknown"
    assert dimension("fourth") == "other"  # a 4th distinct value
    assert dimension("change_auth") == "change_a"  # seen ones stay
