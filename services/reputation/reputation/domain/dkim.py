"""DKIM key records (RFC 6376 §3.6.1): parse, measure the key, compare with our signing key.

Key size rules (RFC 8301 §3.2 and current receiver practice): an RSA key under 1024 bits is ignored
by receivers (FAIL), under 2048 bits is weak (WARN). Ed25519 keys (RFC 8463) have one fixed size.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from reputation.domain.checks import CheckKind, CheckResult, Verdict
from reputation.domain.dnsbl import DnsAnswer, DnsOutcome
from reputation.domain.tag_list import TagListError, parse_tag_list

MIN_RSA_BITS = 1024
RECOMMENDED_RSA_BITS = 2048

PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class DkimRecordError(ValueError):
    """The published record cannot be used to verify signatures."""


@dataclass(frozen=True)
class DkimKeyRecord:
    tags: dict[str, str]
    key_type: str  # "rsa" | "ed25519"
    public_key: PublicKey | None  # None: revoked (empty p=)
    key_bits: int
    testing: bool
    hash_algorithms: tuple[str, ...]  # empty: any

    @property
    def revoked(self) -> bool:
        return self.public_key is None


def dkim_record_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def _tags(text: str) -> dict[str, str]:
    try:
        tags = parse_tag_list(text)
    except TagListError as exc:
        raise DkimRecordError(str(exc)) from None
    # White space inside a value is folding (p= is often split over several strings): it does not count.
    return {name: "".join(value.split()) for name, value in tags.items()}


def load_public_key(key_type: str, data: bytes) -> PublicKey:
    """The key in `p=`: SubjectPublicKeyInfo (usual) or bare PKCS#1 for RSA, raw 32 bytes for Ed25519."""
    if key_type == "ed25519":
        if len(data) != 32:
            raise DkimRecordError(f"an Ed25519 key is 32 bytes, this one is {len(data)}")
        return ed25519.Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_der_public_key(data)
    except ValueError:
        try:
            key = serialization.load_der_public_key(_pkcs1_to_spki(data))
        except ValueError:
            raise DkimRecordError("p= is not a valid RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise DkimRecordError("k=rsa but p= holds a non-RSA key")
    return key


def _pkcs1_to_spki(data: bytes) -> bytes:
    """Wrap a bare PKCS#1 RSAPublicKey (some signers publish it) in a SubjectPublicKeyInfo."""
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bit_string = b"\x03" + _der_length(len(data) + 1) + b"\x00" + data
    body = algorithm + bit_string
    return b"\x30" + _der_length(len(body)) + body


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def parse_dkim_record(text: str) -> DkimKeyRecord:
    """Parse one key record; raises `DkimRecordError` with the reason a receiver would reject it."""
    tags = _tags(text)
    version = tags.get("v")
    if version is not None and version != "DKIM1":
        raise DkimRecordError(f"v={version} is not DKIM1")
    if "p" not in tags:
        raise DkimRecordError("the record has no public key (p= tag missing)")
    key_type = tags.get("k", "rsa").lower()
    if key_type not in ("rsa", "ed25519"):
        raise DkimRecordError(f"unknown key type k={key_type}")
    hashes = tuple(h.lower() for h in tags["h"].split(":") if h) if "h" in tags else ()
    testing = "y" in tags.get("t", "").lower().split(":")
    if tags["p"] == "":
        return DkimKeyRecord(tags, key_type, None, 0, testing, hashes)
    try:
        data = base64.b64decode(tags["p"], validate=True)
    except (binascii.Error, ValueError):
        raise DkimRecordError("p= is not valid base64") from None
    key = load_public_key(key_type, data)
    bits = key.key_size if isinstance(key, rsa.RSAPublicKey) else 256
    return DkimKeyRecord(tags, key_type, key, bits, testing, hashes)


def signing_public_key(private_key_pem: bytes) -> PublicKey:
    """The public half of a PowerMTA signing key (PEM, PKCS#1 or PKCS#8)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError("the signing key is neither RSA nor Ed25519")
    return key.public_key()


def same_key(a: PublicKey, b: PublicKey) -> bool:
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(*raw) == b.public_bytes(*raw)


def dkim_verdict(domain: str, selector: str, answer: DnsAnswer, signing_key_pem: bytes | None = None) -> CheckResult:
    """Verdict for one selector, from the TXT answer at `<selector>._domainkey.<domain>`."""
    name = dkim_record_name(selector, domain)
    details: dict[str, str] = {"name": name}

    def result(verdict: Verdict, reason: str) -> CheckResult:
        return CheckResult(CheckKind.DKIM, selector, verdict, reason, details)

    if answer.outcome.is_failure:
        return result(Verdict.UNKNOWN, f"could not read the DKIM key at {name}: {answer.describe()}")
    if answer.outcome in (DnsOutcome.NXDOMAIN, DnsOutcome.NODATA) or not answer.records:
        return result(Verdict.FAIL, f"no DKIM key is published at {name}: receivers cannot verify signatures")
    candidates = [t for t in answer.records if "p=" in t.replace(" ", "") or t.startswith("v=DKIM1")]
    if not candidates:
        return result(Verdict.FAIL, f"the TXT record at {name} is not a DKIM key record")
    if len(candidates) > 1:
        return result(Verdict.FAIL, f"{len(candidates)} DKIM records at {name}: receivers may pick either")
    details["record"] = candidates[0]
    try:
        record = parse_dkim_record(candidates[0])
    except DkimRecordError as exc:
        return result(Verdict.FAIL, f"the DKIM record at {name} is unusable: {exc}")
    details["key_type"] = record.key_type
    details["key_bits"] = str(record.key_bits)
    if record.revoked:
        return result(Verdict.FAIL, f"the DKIM key at {name} is revoked (empty p=)")
    if record.key_type == "rsa" and record.key_bits < MIN_RSA_BITS:
        return result(
            Verdict.FAIL,
            f"the RSA key at {name} is {record.key_bits} bits: receivers ignore keys under {MIN_RSA_BITS} bits",
        )
    if signing_key_pem is not None:
        try:
            ours = signing_public_key(signing_key_pem)
        except (ValueError, TypeError) as exc:
            return result(Verdict.FAIL, f"the configured signing key for selector {selector} is unreadable: {exc}")
        matches = record.public_key is not None and same_key(ours, record.public_key)
        details["matches_signing_key"] = "true" if matches else "false"
        if not matches:
            return result(
                Verdict.FAIL,
                f"the key published at {name} is not the one PowerMTA signs with: every signature will fail",
            )
    warnings: list[str] = []
    if record.key_type == "rsa" and record.key_bits < RECOMMENDED_RSA_BITS:
        warnings.append(f"{RECOMMENDED_RSA_BITS} bits are recommended: shorter keys are considered weak")
    if record.testing:
        warnings.append("the key is in testing mode (t=y): receivers may treat signed mail as unsigned")
    if record.hash_algorithms and "sha256" not in record.hash_algorithms:
        warnings.append("h= excludes sha256, the only hash receivers accept (RFC 8301)")
    size = f"{record.key_type.upper()} {record.key_bits}-bit key"
    matched = ", matching the PowerMTA signing key" if signing_key_pem is not None else ""
    if warnings:
        return result(Verdict.WARN, f"{size} at {name}{matched}, but " + "; ".join(warnings))
    return result(Verdict.PASS, f"{size} published at {name}{matched}")
