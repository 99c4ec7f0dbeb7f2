"""WeCom callback crypto (WXBizMsgCrypt semantics), spec §1.3.

Two halves, kept apart as in go-workwx's envelope/signature split:

* :func:`signature` / :func:`verify_signature` -- SHA-1 over the sorted
  ``token, timestamp, nonce, ciphertext`` strings, compared in constant time;
* :class:`CallbackCrypto` -- AES-256-CBC with ``IV = key[:16]`` through
  ``cryptography``'s standard CBC mode (a new, single-use context per message),
  PKCS#7 padding to **32-byte** blocks (a 16-byte unpadder rejects real traffic,
  spec §6.6), and the plaintext layout ``random16 | len(4, big-endian) | msg | receiveid``.

Everything here is pure (no I/O, no clock unless injected) so that the official
test vectors pin it down. Every failure raises a subclass of
:class:`CallbackCryptoError` whose message never contains key material or
decrypted content.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Iterable
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "AesKeyError",
    "Base64Error",
    "CallbackCrypto",
    "CallbackCryptoError",
    "Decrypted",
    "LengthError",
    "PaddingError",
    "ReceiveIdError",
    "SignatureError",
    "decode_aes_key",
    "signature",
    "verify_signature",
]

BLOCK_SIZE = 32
"""WeCom pads to 32 bytes, not AES's 16 (spec §1.3, Vector A has pad byte 30)."""

_RANDOM_LEN = 16
_HEADER_LEN = _RANDOM_LEN + 4
_LEN = struct.Struct(">I")


class CallbackCryptoError(Exception):
    """Base of every callback crypto failure; ``code`` is the official sample's error code."""

    code = -40000
    reason = "crypto"


class SignatureError(CallbackCryptoError):
    """msg_signature missing or not matching (sample code −40001)."""

    code = -40001
    reason = "signature"


class AesKeyError(CallbackCryptoError):
    """EncodingAESKey is not 43 chars decoding to 32 bytes (−40004)."""

    code = -40004
    reason = "aes_key"


class ReceiveIdError(CallbackCryptoError):
    """The receiveid at the plaintext tail is not one this endpoint accepts (−40005)."""

    code = -40005
    reason = "receiveid"


class PaddingError(CallbackCryptoError):
    """Ciphertext not block aligned, or PKCS#7 padding invalid (−40007)."""

    code = -40007
    reason = "padding"


class LengthError(CallbackCryptoError):
    """The 4-byte message length points outside the plaintext (−40008)."""

    code = -40008
    reason = "length"


class Base64Error(CallbackCryptoError):
    """Ciphertext is not valid standard base64 (−40010)."""

    code = -40010
    reason = "base64"


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """Return WeCom's ``msg_signature``: lowercase hex SHA-1 of the sorted, concatenated strings."""
    parts = sorted((token, timestamp, nonce, encrypted))
    return hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324 - WeCom mandates SHA-1


def verify_signature(token: str, timestamp: str, nonce: str, encrypted: str, msg_signature: str) -> None:
    """Raise :class:`SignatureError` unless ``msg_signature`` matches (constant-time compare)."""
    expected = signature(token, timestamp, nonce, encrypted)
    if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode("utf-8", "replace")):
        raise SignatureError("msg_signature does not match")


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """Decode the 43-character EncodingAESKey into the 32-byte AES key."""
    if len(encoding_aes_key) != 43 or not encoding_aes_key.isascii() or not encoding_aes_key.isalnum():
        raise AesKeyError("EncodingAESKey must be 43 characters from [A-Za-z0-9]")
    # 43 alphanumeric characters plus "=" always decode to exactly 32 bytes.
    return base64.b64decode(encoding_aes_key + "=")


class Decrypted(NamedTuple):
    """A decrypted callback payload: the message bytes and the receiveid found after it."""

    message: bytes
    receive_id: str
    accepted: bool = True
    """Whether ``receive_id`` is one this endpoint accepts outright (False only when asked to tolerate others)."""


class CallbackCrypto:
    """Verify, decrypt and encrypt WeCom callbacks for one (token, EncodingAESKey, receiveid).

    ``receive_id`` is what :meth:`encrypt` appends; decryption accepts it plus any id
    in ``also_accept`` (spec §1.1: a 指令回调 endpoint sees the suite_id, URL
    verification may carry the provider corpid, a 个人主体 provider gets ""). Anything
    else raises :class:`ReceiveIdError`.
    """

    __slots__ = ("_accepted", "_algorithm", "_iv", "_random", "receive_id", "token")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        also_accept: Iterable[str] = (),
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        key = decode_aes_key(encoding_aes_key)
        self.token = token
        self.receive_id = receive_id
        self._accepted = frozenset((receive_id, *also_accept))
        self._algorithm = algorithms.AES(key)
        self._iv = key[:16]
        self._random = random_bytes

    # -- verify + decrypt -------------------------------------------------------------

    def decrypt_echostr(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Verify and decrypt a URL-verification ``echostr`` (already URL-decoded), returning the plaintext."""
        verify_signature(self.token, timestamp, nonce, echostr, msg_signature)
        decrypted = self.decrypt(echostr)
        try:
            return decrypted.message.decode("utf-8")
        except UnicodeDecodeError:
            raise LengthError("echostr plaintext is not UTF-8") from None

    def verify_and_decrypt(
        self, msg_signature: str, timestamp: str, nonce: str, encrypted: str, *, any_receive_id: bool = False
    ) -> Decrypted:
        """Verify the signature over ``encrypted`` (the POST body's ``Encrypt``), then decrypt it.

        With ``any_receive_id``, a receiveid outside the accepted set is returned with
        ``accepted=False`` instead of raising: the caller decides (an Event-style document
        of the 数据回调 URL is encrypted for the corp it names, spec §1.1).
        """
        verify_signature(self.token, timestamp, nonce, encrypted, msg_signature)
        return self.decrypt(encrypted, any_receive_id=any_receive_id)

    def decrypt(self, encrypted: str, *, any_receive_id: bool = False) -> Decrypted:
        """Decrypt base64 ciphertext without checking a signature (callers must have verified it)."""
        try:
            # strict_mode: only the standard alphabet, correct padding, nothing after it.
            raw = binascii.a2b_base64(encrypted.encode("ascii"), strict_mode=True)
        except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
            raise Base64Error("Encrypt is not valid base64") from None
        if not raw or len(raw) % BLOCK_SIZE:
            raise PaddingError("ciphertext length is not a multiple of 32")
        # A fresh decryptor per message: cipher contexts are single-use and carry the CBC
        # chaining state, so one is never shared between messages or threads.
        decryptor = Cipher(self._algorithm, modes.CBC(self._iv)).decryptor()
        plain = decryptor.update(raw) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK_SIZE or plain[-pad:] != bytes((pad,)) * pad:
            raise PaddingError("invalid PKCS#7 padding")
        end = len(plain) - pad
        if end < _HEADER_LEN:
            raise LengthError("plaintext shorter than its header")
        (msg_len,) = _LEN.unpack_from(plain, _RANDOM_LEN)
        msg_end = _HEADER_LEN + msg_len
        if msg_end > end:
            raise LengthError("message length exceeds plaintext")
        try:
            receive_id = plain[msg_end:end].decode("utf-8")
        except UnicodeDecodeError:
            raise ReceiveIdError("receiveid is not UTF-8") from None
        if receive_id not in self._accepted:
            if not any_receive_id:
                raise ReceiveIdError("receiveid not accepted by this endpoint")
            return Decrypted(plain[_HEADER_LEN:msg_end], receive_id, accepted=False)
        return Decrypted(plain[_HEADER_LEN:msg_end], receive_id)

    # -- encrypt ------------------------------------------------------------------------

    def encrypt(self, message: bytes | str, receive_id: str | None = None) -> str:
        """Encrypt ``message`` as WeCom does, returning the base64 ``Encrypt`` value."""
        msg = message.encode("utf-8") if isinstance(message, str) else message
        rid = (self.receive_id if receive_id is None else receive_id).encode("utf-8")
        body = b"".join((self._random(_RANDOM_LEN), _LEN.pack(len(msg)), msg, rid))
        pad = BLOCK_SIZE - len(body) % BLOCK_SIZE
        encryptor = Cipher(self._algorithm, modes.CBC(self._iv)).encryptor()
        raw = encryptor.update(body + bytes((pad,)) * pad) + encryptor.finalize()
        return base64.b64encode(raw).decode("ascii")

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        """``msg_signature`` for ``encrypted`` under this endpoint's token."""
        return signature(self.token, timestamp, nonce, encrypted)
