"""Password-protected packages: decrypting what EncryptSensitiveWithPassword and
EncryptAllWithPassword hide, as ``dtexec /Decrypt`` does.

SSIS replaces the protected element (the whole ``DTS:Executable`` under EncryptAll*, a
connection manager's inner element or a sensitive value otherwise) with an XML-Encryption
``EncryptedData`` element carrying ``Salt`` and ``IV`` attributes. Microsoft does not document the
scheme; what this module does was checked against a package saved by SSIS 2016 whose password
its project publishes (the corpus's rtumaykin ``Package 221.dtsx``):

* key: SHA-1 of the password's UTF-8 bytes, widened to a 192-bit Triple-DES key the way
  CryptoAPI's ``CryptDeriveKey`` does (SHA-1 of the hash XOR-ed into 64 bytes of 0x36, then of
  0x5C, concatenated); the ``Salt`` attribute takes no part in it;
* cipher: Triple-DES in CBC mode with the ``IV`` attribute, which also opens the base64
  ``CipherValue``; the last plaintext byte says how many padding bytes to drop;
* plaintext: the XML of the element that was replaced.

Passwords with non-ASCII characters are hashed as UTF-8, which no sample confirms.
This module only turns ciphertext into XML text; the loader parses it with its hardened parser.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from dtsx.engine.errors import PackageLoadError
from dtsx.engine.model import local_name

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import CipherAlgorithm

__all__ = ["XMLENC_NS", "decrypt_payload", "is_password_encrypted"]

XMLENC_NS = "http://www.w3.org/2001/04/xmlenc#"
_BLOCK = 8  # Triple-DES block size in bytes


def is_password_encrypted(attributes: dict[str, str]) -> bool:
    """An ``EncryptedData`` element made with a password carries ``Salt`` (DPAPI ones do not)."""
    return any(local_name(key) == "Salt" for key in attributes)


def _attribute(attributes: dict[str, str], name: str) -> str | None:
    for key, value in attributes.items():
        if local_name(key) == name:
            return value
    return None


def _key(password: str) -> bytes:
    digest = hashlib.sha1(password.encode("utf-8")).digest()
    inner = bytes(0x36 ^ b for b in digest.ljust(64, b"\0"))
    outer = bytes(0x5C ^ b for b in digest.ljust(64, b"\0"))
    return (hashlib.sha1(inner).digest() + hashlib.sha1(outer).digest())[:24]


def decrypt_payload(
    attributes: dict[str, str], cipher_value: str, password: str, *, file: str, line: int | None
) -> str:
    """The XML text an ``EncryptedData`` element stands for.

    ``attributes`` are the element's (any namespace), ``cipher_value`` the text of its
    ``CipherValue``. A wrong password, or a damaged element, raises PackageLoadError at
    ``file``:``line``; the password never appears in the message.
    """
    wrong = PackageLoadError(
        "cannot decrypt this encrypted element with the package password given: the password is "
        "wrong, or the element is damaged; check --decrypt-env/--decrypt-file",
        file=file,
        line=line,
    )
    try:
        iv = base64.b64decode(_attribute(attributes, "IV") or "", validate=True)
        data = base64.b64decode("".join(cipher_value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise wrong from None
    if len(iv) != _BLOCK or len(data) < 2 * _BLOCK or len(data) % _BLOCK:
        raise wrong
    body = data[_BLOCK:] if data[:_BLOCK] == iv else data  # the IV also opens the cipher text
    plain = _decrypt_cbc(_key(password), iv, body)
    padding = plain[-1]
    if not 1 <= padding <= _BLOCK:
        raise wrong
    try:
        text = plain[:-padding].decode("utf-8")
    except UnicodeDecodeError:
        raise wrong from None
    if not text.lstrip("\ufeff \t\r\n").startswith("<"):
        raise wrong
    return text


def _decrypt_cbc(key: bytes, iv: bytes, body: bytes) -> bytes:
    """Triple-DES in CBC mode. cryptography is imported here, not with the module: its import
    costs about 5% of a run's start-up, which only password-protected packages should pay."""
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    decryptor = Cipher(_triple_des()(key), modes.CBC(iv)).decryptor()
    return decryptor.update(body) + decryptor.finalize()


@functools.cache
def _triple_des() -> Callable[[bytes], CipherAlgorithm]:
    """The TripleDES class, imported once: the first call's warning filter is then not touched
    again by later decryptions."""
    with warnings.catch_warnings():  # Triple-DES is "decrepit" for new designs; SSIS uses it.
        warnings.simplefilter("ignore")
        try:
            from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
        except ImportError:  # cryptography < 43
            from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    return TripleDES
