"""Callback crypto against the official vectors (spec §1.5), wechatpy, a from-scratch CBC oracle, and itself."""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from authsync.wecom.crypto import (
    AesKeyError,
    Base64Error,
    CallbackCrypto,
    LengthError,
    PaddingError,
    ReceiveIdError,
    SignatureError,
    decode_aes_key,
    signature,
)

# Vector A: official doc example (D-91144).
A_TOKEN, A_KEY, A_RID = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7"
A_TS, A_NONCE, A_SIG = "1409659813", "1372623149", "477715d11cdb4164915debcba66cb864d751f3e6"
A_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3"
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gs"
    "ijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUa"
    "x5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIG"
    "HBZZIs2pDBS8R07+qN+E7Q=="
)
A_MESSAGE = (
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    b"<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n"
    b"<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    b"<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)

# Vector B: official callback sample (sbzhu/weworkapi_python).
B_TOKEN, B_KEY, B_RID = (
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
)
B_ECHO = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
B_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkY"
    "cD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka"
    "7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49H"
    "KYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)

# Vector C: wechatpy tests/test_crypto.py (enterprise crypto).
C_TOKEN, C_KEY, C_RID = "123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a"
C_ECHO = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="


def test_vector_a_signature_and_plaintext() -> None:
    assert signature(A_TOKEN, A_TS, A_NONCE, A_ENCRYPT) == A_SIG
    decrypted = CallbackCrypto(A_TOKEN, A_KEY, A_RID).verify_and_decrypt(A_SIG, A_TS, A_NONCE, A_ENCRYPT)
    assert decrypted.message == A_MESSAGE
    assert decrypted.receive_id == A_RID


def test_vector_a_uses_32_byte_pkcs7_blocks() -> None:
    """Pad byte 30 is only valid with 32-byte blocks; a 16-byte unpadder rejects it (spec §6.6)."""
    raw = base64.b64decode(A_ENCRYPT)
    key = decode_aes_key(A_KEY)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(raw) + decryptor.finalize()
    assert len(raw) == 352
    assert plain[-1] == 30


def test_vector_b_get_and_post() -> None:
    crypto = CallbackCrypto(B_TOKEN, B_KEY, B_RID)
    echoed = crypto.decrypt_echostr("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", B_ECHO)
    assert echoed == "1288432023552776189"
    post = crypto.verify_and_decrypt("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", B_ENCRYPT)
    assert post.message.decode() == (
        "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
        "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
        "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
    )


def test_vector_c_and_its_negative_case() -> None:
    crypto = CallbackCrypto(C_TOKEN, C_KEY, C_RID)
    sig, ts = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780"
    assert crypto.decrypt_echostr(sig, ts, "437374425", C_ECHO) == "5927782489442352469"
    with pytest.raises(SignatureError):
        crypto.decrypt_echostr(sig, ts, "437374424", C_ECHO)


def test_signature_compare_accepts_uppercase_hex_and_rejects_garbage() -> None:
    crypto = CallbackCrypto(A_TOKEN, A_KEY, A_RID)
    assert crypto.verify_and_decrypt(A_SIG.upper(), A_TS, A_NONCE, A_ENCRYPT).message == A_MESSAGE
    for bad in ("", "0" * 40, A_SIG[:-1], "不是签名"):
        with pytest.raises(SignatureError):
            crypto.verify_and_decrypt(bad, A_TS, A_NONCE, A_ENCRYPT)


def test_receive_id_policy() -> None:
    strict = CallbackCrypto(A_TOKEN, A_KEY, "wwsomeoneelse")
    with pytest.raises(ReceiveIdError):
        strict.decrypt(A_ENCRYPT)
    lenient = CallbackCrypto(A_TOKEN, A_KEY, "wwsomeoneelse", also_accept=[A_RID])
    assert lenient.decrypt(A_ENCRYPT).receive_id == A_RID
    personal = CallbackCrypto(A_TOKEN, A_KEY, "wwsuite", also_accept=[""])
    assert personal.decrypt(personal.encrypt("hi", receive_id="")).message == b"hi"


@pytest.mark.parametrize(
    ("encrypted", "error"),
    [
        ("not base64!!", Base64Error),
        ("", PaddingError),
        (base64.b64encode(b"x" * 31).decode(), PaddingError),  # not block aligned
    ],
)
def test_undecryptable_inputs(encrypted: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        CallbackCrypto(A_TOKEN, A_KEY, A_RID).decrypt(encrypted)


def _raw_encrypt(key_text: str, plaintext: bytes) -> str:
    key = decode_aes_key(key_text)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plaintext) + encryptor.finalize()).decode()


def test_bad_padding_and_bad_length() -> None:
    crypto = CallbackCrypto(A_TOKEN, A_KEY, A_RID)
    # Last byte 0 and 33 are not PKCS#7 pad values for 32-byte blocks; 5 with mismatching bytes neither.
    for tail in (b"\x00", b"\x21", b"\x01\x02\x03\x04\x05"):
        body = os.urandom(64 - len(tail)) + tail
        with pytest.raises(PaddingError):
            crypto.decrypt(_raw_encrypt(A_KEY, body))
    # msg_len claims more bytes than there are.
    body = os.urandom(16) + (1000).to_bytes(4, "big") + b"<xml/>"
    padded = body + bytes([32 - len(body) % 32]) * (32 - len(body) % 32)
    with pytest.raises(LengthError):
        crypto.decrypt(_raw_encrypt(A_KEY, padded))
    # Padding that eats into the 20-byte header.
    with pytest.raises(LengthError):
        crypto.decrypt(_raw_encrypt(A_KEY, os.urandom(16) + bytes([16]) * 16))


@pytest.mark.parametrize(
    "key", ["", "short", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2+"]
)
def test_bad_encoding_aes_key(key: str) -> None:
    with pytest.raises(AesKeyError):
        CallbackCrypto("t", key, "r")


def test_errors_do_not_leak_key_or_plaintext() -> None:
    crypto = CallbackCrypto(A_TOKEN, A_KEY, "wwother")
    with pytest.raises(ReceiveIdError) as info:
        crypto.decrypt(A_ENCRYPT)
    text = str(info.value) + repr(info.value)
    assert A_KEY not in text
    assert "hello" not in text
    assert A_RID not in text


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=2000), receive_id=st.text(max_size=40))
def test_round_trip(message: bytes, receive_id: str) -> None:
    crypto = CallbackCrypto("token", A_KEY, receive_id)
    encrypted = crypto.encrypt(message)
    assert len(base64.b64decode(encrypted)) % 32 == 0
    decrypted = crypto.verify_and_decrypt(crypto.sign("1", "2", encrypted), "1", "2", encrypted)
    assert (decrypted.message, decrypted.receive_id) == (message, receive_id)


def _oracle_decrypt(key_text: str, encrypted: str) -> tuple[bytes, bytes]:
    """From-scratch WeCom decryption with cryptography's CBC and PKCS7(256), sharing no code with ours."""
    key = decode_aes_key(key_text)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    padded = decryptor.update(base64.b64decode(encrypted, validate=True)) + decryptor.finalize()
    unpadder = padding.PKCS7(256).unpadder()
    plain = unpadder.update(padded) + unpadder.finalize()
    msg_len = int.from_bytes(plain[16:20], "big")
    return plain[20 : 20 + msg_len], plain[20 + msg_len :]


def _oracle_encrypt(key_text: str, random16: bytes, message: bytes, receive_id: bytes) -> str:
    padder = padding.PKCS7(256).padder()
    body = random16 + len(message).to_bytes(4, "big") + message + receive_id
    return _raw_encrypt(key_text, padder.update(body) + padder.finalize())


@settings(max_examples=200, deadline=None)
@given(message=st.binary(max_size=2000), receive_id=st.text(max_size=40), random16=st.binary(min_size=16, max_size=16))
def test_against_an_independent_cbc_oracle(message: bytes, receive_id: str, random16: bytes) -> None:
    crypto = CallbackCrypto("token", A_KEY, receive_id, random_bytes=lambda n: random16[:n])
    encrypted = crypto.encrypt(message)
    assert _oracle_decrypt(A_KEY, encrypted) == (message, receive_id.encode())
    assert _oracle_encrypt(A_KEY, random16, message, receive_id.encode()) == encrypted
    decrypted = crypto.decrypt(_oracle_encrypt(A_KEY, os.urandom(16), message, receive_id.encode()))
    assert (decrypted.message, decrypted.receive_id, decrypted.accepted) == (message, receive_id, True)


def test_a_foreign_receive_id_is_refused_unless_the_caller_tolerates_it() -> None:
    crypto = CallbackCrypto("token", A_KEY, "wwsuite")
    encrypted = crypto.encrypt(b"<xml/>", receive_id="wwcorp")
    with pytest.raises(ReceiveIdError):
        crypto.decrypt(encrypted)
    tolerated = crypto.decrypt(encrypted, any_receive_id=True)
    assert (tolerated.message, tolerated.receive_id, tolerated.accepted) == (b"<xml/>", "wwcorp", False)
    assert crypto.decrypt(crypto.encrypt(b"<xml/>"), any_receive_id=True).accepted


@settings(max_examples=300, deadline=None)
@given(pad=st.integers(min_value=0, max_value=40), count=st.integers(min_value=0, max_value=32), data=st.data())
def test_padding_rule_is_pkcs7_over_32_byte_blocks(pad: int, count: int, data: st.DataObject) -> None:
    """Our unpadding accepts exactly what cryptography's PKCS7(256) accepts (spec §1.3)."""
    tail = data.draw(st.binary(min_size=32 - count, max_size=32 - count)) + bytes((pad,)) * count
    padded = os.urandom(32) + tail
    try:
        unpadder = padding.PKCS7(256).unpadder()
        unpadder.update(padded)
        unpadder.finalize()
        oracle_accepts = True
    except ValueError:
        oracle_accepts = False
    try:
        CallbackCrypto(A_TOKEN, A_KEY, A_RID).decrypt(_raw_encrypt(A_KEY, padded))
        we_accept = True
    except PaddingError:
        we_accept = False
    except (LengthError, ReceiveIdError):
        we_accept = True  # padding passed; the random body failed a later check
    assert we_accept == oracle_accepts


def test_one_instance_serves_many_messages_and_threads() -> None:
    """A new CBC context per message: no chaining state leaks between calls or threads."""
    crypto = CallbackCrypto(A_TOKEN, A_KEY, A_RID)
    encrypted = [crypto.encrypt(f"<xml>{i}</xml>") for i in range(64)]
    assert [crypto.decrypt(e).message for e in encrypted * 2] == [f"<xml>{i}</xml>".encode() for i in range(64)] * 2
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda e: crypto.decrypt(e).message, encrypted * 8))
    assert results == [f"<xml>{i}</xml>".encode() for i in range(64)] * 8
    assert crypto.decrypt(A_ENCRYPT).message == A_MESSAGE


@settings(max_examples=100, deadline=None)
@given(message=st.text(min_size=1, max_size=500))
def test_interop_with_wechatpy_both_ways(message: str) -> None:
    token, rid = "interopToken", "wwinterop01"
    ours = CallbackCrypto(token, A_KEY, rid)
    theirs = WeChatCrypto(token, A_KEY, rid)
    xml = f"<xml><Content><![CDATA[{message}]]></Content></xml>"
    # wechatpy encrypts and signs, we verify and decrypt.
    envelope = theirs.encrypt_message(xml, "12345", "1700000000")
    from authsync.wecom.callbacks import parse_envelope
    from authsync.wecom.safexml import parse

    reply = parse(envelope.encode(), max_bytes=100_000)
    encrypted = parse_envelope(envelope.encode()).encrypt
    decrypted = ours.verify_and_decrypt(reply["MsgSignature"], "1700000000", "12345", encrypted)
    assert decrypted.message.decode() == xml
    # We encrypt and sign, wechatpy verifies and decrypts.
    mine = ours.encrypt(xml)
    body = f"<xml><ToUserName><![CDATA[{rid}]]></ToUserName><Encrypt><![CDATA[{mine}]]></Encrypt></xml>"
    assert theirs.decrypt_message(body, ours.sign("1700000001", "999", mine), "1700000001", "999") == xml
    with pytest.raises(InvalidSignatureException):
        theirs.decrypt_message(body, ours.sign("1700000001", "998", mine), "1700000001", "999")
