"""The few bits of DER the doctor needs: an RSA key's modulus from a DKIM ``p=`` value or from a
PEM private key, and a public key built back from it for a DKIM record to paste.

A full ASN.1 library would be a dependency for three structures; these are read strictly and
anything unexpected is simply "not readable" (the doctor then says it could not tell the size).
"""

from __future__ import annotations

import base64
import binascii
import re

_RSA_ENCRYPTION_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.DOTALL)


class KeyUnreadable(ValueError):
    pass


def _read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """The content of the element with ``tag`` at ``pos``, and the position after it."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise KeyUnreadable("unexpected structure")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or pos + size > len(data):
            raise KeyUnreadable("bad length")
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    if pos + length > len(data):
        raise KeyUnreadable("truncated")
    return data[pos : pos + length], pos + length


_SEQUENCE, _INTEGER, _BIT_STRING, _OCTET_STRING = 0x30, 0x02, 0x03, 0x04


def _modulus_of_rsa_public_key(der: bytes) -> int:
    """RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (PKCS #1)."""
    body, _ = _read(der, 0, _SEQUENCE)
    modulus, pos = _read(body, 0, _INTEGER)
    _read(body, pos, _INTEGER)
    return int.from_bytes(modulus, "big")


def rsa_modulus_from_dkim(p_value: str) -> int:
    """The modulus of a DKIM ``p=`` RSA key: SubjectPublicKeyInfo (what everyone publishes) or a
    bare RSAPublicKey (which some verifiers also accept)."""
    try:
        der = base64.b64decode("".join(p_value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnreadable("not base64") from None
    try:
        info, _ = _read(der, 0, _SEQUENCE)
        algorithm, pos = _read(info, 0, _SEQUENCE)
        if not algorithm.startswith(_RSA_ENCRYPTION_OID):
            raise KeyUnreadable("not an RSA key")
        bits, _ = _read(info, pos, _BIT_STRING)
        if not bits or bits[0] != 0:
            raise KeyUnreadable("bad bit string")
        return _modulus_of_rsa_public_key(bits[1:])
    except KeyUnreadable:
        return _modulus_of_rsa_public_key(der)


def rsa_key_from_pem(pem_text: str) -> tuple[int, int]:
    """(modulus, public exponent) of an RSA private key in PEM, PKCS #1 (``BEGIN RSA PRIVATE
    KEY``) or PKCS #8 (``BEGIN PRIVATE KEY``). Only the public half is kept."""
    match = _PEM.search(pem_text)
    if match is None:
        raise KeyUnreadable("no PEM block")
    try:
        der = base64.b64decode("".join(match[2].split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyUnreadable("not base64") from None
    if match[1] == "PRIVATE KEY":  # PKCS #8: version, algorithm, OCTET STRING { PKCS #1 key }
        info, _ = _read(der, 0, _SEQUENCE)
        _, pos = _read(info, 0, _INTEGER)
        algorithm, pos = _read(info, pos, _SEQUENCE)
        if not algorithm.startswith(_RSA_ENCRYPTION_OID):
            raise KeyUnreadable("not an RSA key")
        der, _ = _read(info, pos, _OCTET_STRING)
    elif match[1] != "RSA PRIVATE KEY":
        raise KeyUnreadable(f"a {match[1].lower()}, not an RSA private key")
    body, _ = _read(der, 0, _SEQUENCE)  # version, modulus, publicExponent, private parts...
    _, pos = _read(body, 0, _INTEGER)
    modulus, pos = _read(body, pos, _INTEGER)
    exponent, _ = _read(body, pos, _INTEGER)
    return int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")


def _element(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        size = (n.bit_length() + 7) // 8
        length = bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + content


def _integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")  # leading 0: stays positive
    return _element(_INTEGER, raw)


def dkim_public_key(modulus: int, exponent: int) -> str:
    """The ``p=`` value (base64 SubjectPublicKeyInfo) for an RSA key."""
    rsa_public = _element(_SEQUENCE, _integer(modulus) + _integer(exponent))
    algorithm = _element(_SEQUENCE, _RSA_ENCRYPTION_OID + b"\x05\x00")
    info = _element(_SEQUENCE, algorithm + _element(_BIT_STRING, b"\x00" + rsa_public))
    return base64.b64encode(info).decode("ascii")
