"""XML-DSig enveloped signatures on CAP 1.2 messages (``signxml``): sign what leaves, verify what arrives.

    from command.alerts.signing import load_signer, verify
    signer = load_signer(key=settings.cap_signing_key, cert=settings.cap_signing_cert, var_dir=settings.var_dir)
    signed = signer.sign(xml)                       # str; <ds:Signature> is the last child of <alert>
    got = verify(signed, trusted=[signer.cert_pem])  # Verified(root, signer, identifier) or CapSignatureError

The CAP 1.2 schema ends ``alert`` with ``<any namespace="http://www.w3.org/2000/09/xmldsig#">``, so a signed
message still validates against the OASIS XSD. RSA-SHA256, SHA-256 digests, exclusive c14n, one Reference
with ``URI=""`` (the whole message) and the enveloped-signature transform.

Key and certificate come from two PEM files (settings ``cap_signing_key`` / ``cap_signing_cert``). When
neither is set (a laptop install), a self-signed RSA key and certificate are made once in
``var_dir/cap-signing/`` and reused, so every message is signed; the log says so. A receiver that needs a
chain of trust gets the deployment's real certificate through the settings.

Verification trusts only the certificates it is given (never the one a message carries), requires exactly one
``ds:Signature`` as a direct child of ``<alert>`` whose single Reference covers the whole document, and hands
back the content signxml verified (``Verified.root``): callers read that, not the bytes they were given, so
a signature-wrapping message (a signed copy tucked away beside forged content) cannot pass off the forgery.
Input is parsed with entities, DTDs and the network off; a DOCTYPE is refused.
"""
from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

from lxml import etree

from command.alerts.cap_schema import CAP_NS, check_tree
from command.errors import CapSignatureError, CapValidationError

log = logging.getLogger(__name__)

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
SELF_SIGNED_DIR = "cap-signing"
KEY_FILE, CERT_FILE = "key.pem", "cert.pem"
SELF_SIGNED_CN = "粤政图 CAP signer (self-signed, laptop install)"
MAX_BYTES = 1_000_000
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def _signxml():
    try:
        import signxml
    except ImportError as e:     # pragma: no cover - a declared dependency
        raise CapSignatureError("CAP signing needs the signxml package: pip install 'signxml>=4.0'") from e
    return signxml


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           dtd_validation=False, remove_blank_text=False)


def _load_cert(pem: bytes):
    from cryptography import x509
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise CapSignatureError(f"not a PEM X.509 certificate: {e}") from None


def _cert_der(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding
    return _load_cert(pem).public_bytes(Encoding.DER)


def common_name(cert_pem: bytes) -> str:
    """The certificate's subject CN (or the whole subject when it has none)."""
    from cryptography.x509.oid import NameOID
    cert = _load_cert(cert_pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.subject.rfc4514_string()


@dataclass(frozen=True)
class Signer:
    """A private key and its certificate (PEM bytes). ``sign`` returns the message with its signature."""

    key_pem: bytes
    cert_pem: bytes
    source: str = ""            # where they came from, for the log and `yzt cap verify`

    @property
    def subject(self) -> str:
        return common_name(self.cert_pem)

    @functools.cached_property
    def _private_key(self) -> Any:
        """The key parsed once per signer: loading a PEM RSA key checks it (~10 ms), which every message
        paid again (half of a 1,000-event drill's time)."""
        from cryptography.hazmat.primitives import serialization
        try:
            return serialization.load_pem_private_key(self.key_pem, password=None)
        except (ValueError, TypeError) as e:
            raise CapSignatureError(f"CAP signing key ({self.source}): not an unencrypted PEM private key: {e}") \
                from None

    def sign(self, xml: str | bytes) -> str:
        """Enveloped XML-DSig over the whole CAP message; returns UTF-8 XML text with its declaration."""
        sx = _signxml()
        data = xml.encode("utf-8") if isinstance(xml, str) else xml
        root = etree.fromstring(data, _parser())
        if root.find(f"{{{DS_NS}}}Signature") is not None:
            raise CapSignatureError("CAP message is already signed: build it again instead of re-signing")
        signer = sx.XMLSigner(method=sx.methods.enveloped, signature_algorithm=sx.SignatureMethod.RSA_SHA256,
                              digest_algorithm=sx.DigestAlgorithm.SHA256,
                              c14n_algorithm=sx.CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
        signer.namespaces = {"ds": DS_NS}
        try:
            signed = signer.sign(root, key=self._private_key, cert=[self.cert_pem.decode("ascii")],
                                 always_add_key_value=False)
        except (ValueError, TypeError, sx.InvalidInput) as e:
            raise CapSignatureError(f"CAP message could not be signed: {e}") from None
        return etree.tostring(signed, encoding="UTF-8", xml_declaration=True).decode("utf-8")


def generate_self_signed(directory: Path, *, common_name: str = SELF_SIGNED_CN, key_size: int = 2048,
                         days: int = 3650) -> tuple[Path, Path]:
    """A new RSA key (2048 bits: NIST SP 800-57 through 2030) and a self-signed certificate in ``directory`` (key file mode 0600)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "粤政图 Yue Zheng Tu")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         key_cert_sign=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _read_pem(path: Path, what: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CapSignatureError(f"CAP signing {what} {path} (setting {setting}): {e.strerror or e}") from None


def load_signer(*, key: Path | None, cert: Path | None, var_dir: Path) -> Signer:
    """The signer from the two PEM paths; with neither set, the self-signed pair in var_dir (made once)."""
    if (key is None) != (cert is None):
        missing = "cap_signing_cert" if cert is None else "cap_signing_key"
        raise CapSignatureError(f"CAP signing: set both cap_signing_key and cap_signing_cert ({missing} is unset)")
    if key is not None:
        signer = Signer(_read_pem(key, "key", "cap_signing_key"), _read_pem(cert, "certificate",
                                                                              "cap_signing_cert"),
                        source=f"{cert} (settings)")
    else:
        directory = Path(var_dir) / SELF_SIGNED_DIR
        key_path, cert_path = directory / KEY_FILE, directory / CERT_FILE
        if not (key_path.is_file() and cert_path.is_file()):
            _make_self_signed_once(directory)
        try:
            signer = Signer(key_path.read_bytes(), cert_path.read_bytes(), source=f"{cert_path} (self-signed)")
        except OSError as e:
            raise CapSignatureError(f"CAP signing: {directory} is incomplete ({e.strerror}): remove it to make a "
                                    "new self-signed pair, or set cap_signing_key and cap_signing_cert") from None
    _check_pair(signer)
    return signer


def _make_self_signed_once(directory: Path) -> None:
    """Make the pair in a private directory, then rename it into place: when several processes start at once
    (web workers, the delivery process) exactly one pair wins and every process signs with it."""
    import shutil
    import tempfile
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SELF_SIGNED_DIR}-", dir=directory.parent))
    try:
        generate_self_signed(tmp)
        try:
            os.rename(tmp, directory)           # atomic; fails when another process got there first
        except OSError:
            return
        log.warning("CAP signing: no cap_signing_key/cap_signing_cert configured; made a self-signed key and "
                    "certificate in %s. Receivers can only check these messages against that certificate: "
                    "configure the organisation's own for live use.", directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def trusted_certificate(*, cert: Path | None, var_dir: Path) -> bytes:
    """The certificate this deployment signs with: ``cap_signing_cert``, else the self-signed one in var_dir.
    Never makes a key (verifying must not create a signer)."""
    if cert is not None:
        return _read_pem(cert, "certificate", "cap_signing_cert")
    path = Path(var_dir) / SELF_SIGNED_DIR / CERT_FILE
    if not path.is_file():
        raise CapSignatureError("no trusted certificate: set cap_signing_cert in the settings or pass --cert PEM")
    return path.read_bytes()


def _check_pair(signer: Signer) -> None:
    from cryptography.hazmat.primitives import serialization
    private = signer._private_key          # parsed here once; sign() uses the same object
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if private.public_key().public_bytes(*fmt) != _load_cert(signer.cert_pem).public_key().public_bytes(*fmt):
        raise CapSignatureError(f"CAP signing: the key does not belong to the certificate {signer.source}")


# ---------------------------------------------------------------- verifying


@dataclass(frozen=True)
class Verified:
    """What the signature covers: read the message from ``root`` (signxml's verified copy), nothing else."""

    root: etree._Element        # the signed <alert>, without its ds:Signature
    signer: str                 # subject CN of the trusted certificate that verified it
    identifier: str
    sender: str


def _parse(data: bytes) -> etree._Element:
    if len(data) > MAX_BYTES:
        raise CapSignatureError(f"{len(data):,} bytes is over the {MAX_BYTES:,}-byte limit")
    if _DECLARATION.search(data) or _DECLARATION.search(data.replace(b"\x00", b"")):
        raise CapSignatureError("declares a DOCTYPE or ENTITY (XML external-entity attack?): refused unread")
    try:
        tree = etree.fromstring(data, _parser()).getroottree()
    except etree.XMLSyntaxError as e:
        raise CapSignatureError(f"not well-formed XML at line {e.lineno}: {e.msg}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise CapSignatureError("declares a DOCTYPE: refused")
    return tree.getroot()


def _der_of_text(text: str | None) -> bytes:
    import base64
    import binascii
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def verify(xml: str | bytes, *, trusted: Iterable[bytes], data_dir: Path | None = None) -> Verified:
    """Check the message's signature against the ``trusted`` PEM certificates. Raises CapSignatureError.

    The verified content must also be a valid CAP 1.2 message (the XSD and CAP's own rules)."""
    sx = _signxml()
    data = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    root = _parse(data)
    if root.tag != f"{{{CAP_NS}}}alert":
        raise CapSignatureError(f"root element is <{etree.QName(root).localname}>, not a CAP 1.2 <alert>")
    sigs = root.findall(f".//{{{DS_NS}}}Signature")
    if not sigs:
        raise CapSignatureError("unsigned: the message has no XML-DSig <ds:Signature>")
    if len(sigs) != 1 or sigs[0].getparent() is not root:
        raise CapSignatureError("a CAP message carries exactly one <ds:Signature>, as a direct child of <alert>: "
                                f"found {len(sigs)}, {'not ' if sigs[0].getparent() is not root else ''}at the top")
    refs = sigs[0].findall(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")
    if len(refs) != 1 or refs[0].get("URI") != "":
        raise CapSignatureError('the signature must have one Reference with URI="" (the whole message)')
    certs = [c for c in trusted if c]
    if not certs:
        raise CapSignatureError("no trusted certificate to check the signature against")
    config = sx.SignatureConfiguration(location="./", expect_references=1)
    last: Exception | None = None
    for pem in certs:
        try:
            result = sx.XMLVerifier().verify(data, x509_cert=pem.decode("ascii"), parser=_parser(),
                                             expect_config=config)
        except (sx.InvalidSignature, sx.InvalidDigest, sx.InvalidCertificate, sx.InvalidInput) as e:
            last = e
            continue
        except (ValueError, TypeError, etree.LxmlError) as e:
            raise CapSignatureError(f"signature unreadable: {' '.join(str(e).split())[:200]}") from None
        embedded = sigs[0].findall(f"{{{DS_NS}}}KeyInfo/{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")
        if any(_der_of_text(e.text) != _cert_der(pem) for e in embedded):
            raise CapSignatureError("the certificate the message carries is not the trusted one that verified it")
        signed = result.signed_xml
        if signed is None or signed.tag != f"{{{CAP_NS}}}alert":
            raise CapSignatureError("the signature does not cover a CAP <alert>")
        try:
            check_tree(signed, require_references=False, data_dir=data_dir)
        except CapValidationError as e:
            raise CapSignatureError(f"signed content is not valid CAP: {e}") from None
        ns = {"c": CAP_NS}
        return Verified(root=signed, signer=common_name(pem), identifier=signed.findtext("c:identifier",
                        namespaces=ns) or "", sender=signed.findtext("c:sender", namespaces=ns) or "")
    why = " ".join(str(last).split()) if last else "no trusted certificate matched"
    if isinstance(last, sx.InvalidDigest):
        why = f"the message was changed after signing ({why})"
    elif isinstance(last, sx.InvalidSignature) and "verification failed" in why.lower():
        why = f"not signed by a trusted key, or the signature was changed ({why})"
    raise CapSignatureError(why[:300])
