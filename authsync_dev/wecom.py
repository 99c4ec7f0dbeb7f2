"""WeCom's side of a callback: build event XML, encrypt, sign, wrap in the envelope.

Used by tests, by ``authsync_dev.make_events`` (the samples in events/) and by the
emulator. It reuses :class:`authsync.wecom.crypto.CallbackCrypto` for encryption; the
interop tests check that output against wechatpy, an independent implementation.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from authsync.wecom.crypto import CallbackCrypto

__all__ = [
    "TEST_SUITE",
    "EventValue",
    "SignedCallback",
    "TestSuite",
    "event_xml",
    "sign_echostr",
    "sign_event",
]


@dataclass(frozen=True)
class TestSuite:
    """A documented, *fake* suite configuration for tests and samples (README: "Test suite")."""

    __test__ = False  # not a pytest test class

    suite_id: str
    suite_secret: str
    token: str
    encoding_aes_key: str
    provider_corpid: str

    def config(self) -> dict[str, str]:
        """The JSON stored in ``<prefix><suite_id>/config``."""
        return {
            "suite_id": self.suite_id,
            "suite_secret": self.suite_secret,
            "token": self.token,
            "encoding_aes_key": self.encoding_aes_key,
            "provider_corpid": self.provider_corpid,
        }

    def crypto(self, receive_id: str | None = None) -> CallbackCrypto:
        return CallbackCrypto(self.token, self.encoding_aes_key, self.suite_id if receive_id is None else receive_id)


TEST_SUITE = TestSuite(
    suite_id="wwa1b2c3d4e5f60001",
    suite_secret="test-suite-secret-not-a-real-one",
    token="AuthsyncTestToken",
    encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    provider_corpid="wwprovider00000001",
)


@dataclass(frozen=True)
class SignedCallback:
    """What WeCom sends: query parameters and (for POST) the XML body."""

    query: dict[str, str]
    body: bytes | None = None


EventValue = str | int | Sequence[Mapping[str, str | int]]
"""A field of a callback document: text, a number, or repeated elements each with children
(``auto_activate``'s ``<AccountList>``, D-95994)."""


def _elements(fields: Mapping[str, EventValue], cdata: bool) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, str | int):
            if isinstance(value, int) or not cdata:
                parts.append(f"<{name}>{escape(str(value))}</{name}>")
            else:
                parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
        else:  # repeated siblings, as safexml.parse reads them back: one dict, or a list of dicts
            parts.extend(f"<{name}>{_elements(item, cdata)}</{name}>" for item in value)
    return "".join(parts)


def event_xml(fields: Mapping[str, EventValue], *, cdata: bool = True) -> str:
    """An InfoType document as WeCom writes it: ``<xml>`` with one element per field."""
    return "<xml>" + _elements(fields, cdata) + "</xml>"


def sign_event(
    crypto: CallbackCrypto,
    message: str | bytes,
    *,
    to_user_name: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
    receive_id: str | None = None,
) -> SignedCallback:
    """Encrypt ``message`` (text as UTF-8, or raw bytes), sign it and wrap it in the envelope WeCom POSTs.

    ``receive_id`` overrides the crypto's own (a 数据回调 event is encrypted for the corp it names).
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypted = crypto.encrypt(message, receive_id)
    body = (
        f"<xml><ToUserName><![CDATA[{to_user_name or crypto.receive_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    )
    query = {"msg_signature": crypto.sign(ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    return SignedCallback(query, body.encode("utf-8"))


def sign_echostr(
    crypto: CallbackCrypto, plaintext: str, *, timestamp: int | None = None, nonce: str | None = None
) -> SignedCallback:
    """The GET WeCom sends when a callback URL is saved in its console."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or str(secrets.randbelow(10**10))
    echostr = crypto.encrypt(plaintext)
    return SignedCallback(
        {"msg_signature": crypto.sign(ts, nonce, echostr), "timestamp": ts, "nonce": nonce, "echostr": echostr}
    )
