"""The HTTPS certificates ``serve --https`` makes: a small authority a phone trusts once, and the
server's own certificate, which that authority signs.

A phone trusts the authority (``ca.pem``), not the server's certificate, so the server may
re-issue its own (``cert.pem``, sent with the authority as its chain) whenever its addresses
change, and the phone still trusts it. The authority itself can vouch for nothing else: its
critical NameConstraints permit only this machine's names (``localhost``, its host name and
``NAME.local``, the mDNS name that stays the same when the router hands out another address)
and the private address blocks it serves on (``192.168.0.0/16`` for ``192.168.1.5``; a public
address only as itself). A phone that trusts it therefore trusts it for no bank, mail or other
site. A new address in the same private block needs only a new server certificate; a new host
name, or an address outside those blocks, needs a new authority, which each phone must trust
again (the server says so when it makes one). Its key never leaves the state folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

CA_DAYS = 3650  # what a phone is asked to trust: ten years, so trusting it is rare
LEAF_DAYS = 800  # iOS refuses server certificates valid for more than 825 days; re-issued on its own
RENEW_BEFORE_DAYS = 30
ANY_ADDRESS = ("0.0.0.0", "::", "")
# Private blocks: an address in one is covered by the whole block, so a new address from the router is too.
PRIVATE_BLOCKS = tuple(
    ipaddress.ip_network(block)
    for block in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                  "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10")
)  # fmt: skip

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Certificates:
    """What ``serve --https`` uses and shows: the authority phones trust and the server's own pair."""

    ca: Path  # the authority, PEM: what a phone downloads and trusts
    chain: Path  # the server's certificate and then the authority's, PEM: what the server sends
    key: Path  # the server certificate's key (owner-only)
    fingerprint: str  # the authority's SHA-256, AB:CD:...
    ca_expires: dt.datetime
    made_ca: bool  # a new authority: phones that trusted the old one must trust this one

    def ca_der(self) -> bytes:
        """The authority in DER, as Android and iOS install it from a ``.crt`` download."""
        return pem_to_der(self.ca.read_bytes())


def lan_address() -> str | None:
    """This machine's address on the home network, found without sending anything: a UDP socket
    "connected" to a private address only picks the interface its route would use."""
    for probe in ("10.255.255.255", "192.168.255.255", "172.31.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                found = s.getsockname()[0]
        except OSError:
            continue
        if not ipaddress.ip_address(found).is_loopback and found != "0.0.0.0":
            return found
    return None


def machine_names() -> list[str]:
    """This machine's host name and its mDNS name (``NAME.local``), lowercase; none for "localhost"."""
    hostname = (socket.gethostname() or "").lower().removesuffix(".local")
    if not hostname or hostname == "localhost" or not usable_name(hostname):
        return []
    short = hostname.split(".")[0]
    return list(dict.fromkeys([hostname, short, f"{short}.local"]))


def certificate_names(host: str) -> list[str]:
    """The names and addresses a certificate for a server listening on ``host`` should hold."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host in ANY_ADDRESS:
        found = lan_address()
        names += [found] if found else []
        names += machine_names()
    elif host.startswith("[") and host.endswith("]"):
        names.append(host[1:-1])
    else:
        names.append(host)
    return list(dict.fromkeys(n.lower() for n in names if usable_name(n)))


def usable_name(name: str) -> bool:
    """An IP address, or a host name a certificate can hold (letters, digits, hyphens, dots)."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name.isascii() and all(part and part.replace("-", "").isalnum() for part in name.split("."))


def fingerprint_pem(pem: bytes) -> str:
    """The SHA-256 fingerprint of the first certificate in ``pem``, as phones show it (AB:CD:...)."""
    digest = hashlib.sha256(pem_to_der(pem)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def fingerprint(cert: Path) -> str:
    """:func:`fingerprint_pem` of the file ``cert``."""
    return fingerprint_pem(cert.read_bytes())


def ensure_certificates(folder: Path, names: list[str], now: dt.datetime | None = None) -> Certificates:
    """The authority and server certificate in ``folder``, kept from earlier starts while they do,
    else made anew: the authority when it expires within a month or its constraints do not cover
    ``names``; the server's when it expires within a month, names less than ``names``, or the
    authority is new."""
    now = now or dt.datetime.now(dt.UTC)
    ca_path, ca_key_path = folder / "ca.pem", folder / "ca-key.pem"
    chain, key = folder / "cert.pem", folder / "key.pem"
    loaded = _load(ca_path, ca_key_path)
    if loaded is not None:
        reason = _ca_unfit(loaded[0], names, now)
    elif chain.is_file():  # an older version's: self-signed, and it could vouch for any site
        reason = "the certificate kept was not limited to this machine"
    else:
        reason = "there was none"
    made_ca = reason is not None
    if made_ca:
        if reason != "there was none":
            log.warning("making a new HTTPS authority (%s); phones must trust the new one", reason)
        folder.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = _make_ca(names, now)
        _write_key(ca_key_path, ca_key)
        _write(ca_path, _pem(ca_cert))
    else:
        assert loaded is not None
        ca_cert, ca_key = loaded
    leaf_reason = "the authority is new" if made_ca else _leaf_unfit(chain, key, ca_cert, names, now)
    if leaf_reason is not None:
        leaf_key, leaf = _make_leaf(names, ca_cert, ca_key, now)
        _write_key(key, leaf_key)
        _write(chain, _pem(leaf) + _pem(ca_cert))
        log.info("made the server's HTTPS certificate for %s (%s)", ", ".join(names), leaf_reason)
    return Certificates(ca=ca_path, chain=chain, key=key, fingerprint=fingerprint(ca_path),
                        ca_expires=ca_cert.not_valid_after_utc, made_ca=made_ca)  # fmt: skip


def permitted(names: list[str]) -> tuple[list[str], list[IPNetwork]]:
    """The DNS names and address blocks an authority for ``names`` may vouch for."""
    dns, nets = [], []
    for name in names:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            dns.append(name.lower())
            continue
        block = next((b for b in PRIVATE_BLOCKS if b.version == address.version and address in b), None)
        nets.append(block or ipaddress.ip_network(address))
    # Loopback always: with no address block listed, RFC 5280 would leave addresses unconstrained.
    nets += [n for n in LOOPBACK if n not in nets]
    return list(dict.fromkeys(dns)), list(dict.fromkeys(nets))


def covers(constraints: x509.NameConstraints, names: list[str]) -> bool:
    """True when ``constraints`` permit every one of ``names``."""
    from cryptography import x509

    allowed = constraints.permitted_subtrees or []
    dns = [str(t.value).lower() for t in allowed if isinstance(t, x509.DNSName)]
    nets = [t.value for t in allowed if isinstance(t, x509.IPAddress)]
    for name in names:
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            if not any(name == d or name.endswith("." + d) for d in dns):
                return False
            continue
        if not any(isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) and n.version == address.version
                   and address in n for n in nets):  # fmt: skip
            return False
    return True


# -- reading what was kept ------------------------------------------------------------------------


def _load(cert: Path, key: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return (loaded, private) if isinstance(private, ec.EllipticCurvePrivateKey) else None


def _ca_unfit(ca: x509.Certificate, names: list[str], now: dt.datetime) -> str | None:
    from cryptography import x509

    if ca.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return "the one kept expires soon"
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return "the one kept is not limited to this server's names"
    if not covers(constraints, names):
        return "the one kept does not cover " + ", ".join(n for n in names if not covers(constraints, [n]))
    return None


def _leaf_unfit(chain: Path, key: Path, ca: x509.Certificate, names: list[str], now: dt.datetime) -> str | None:
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(chain.read_bytes())
        leaf.verify_directly_issued_by(ca)
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if not key.is_file():
            return "its key is missing"
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound, x509.InvalidSignature):
        return "the one kept is not the authority's"
    if leaf.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return "the one kept expires soon"
    held = {str(v).lower() for v in san.get_values_for_type(x509.DNSName)}
    held |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    missing = [n for n in names if _name_key(n) not in held]
    return f"the one kept does not name {', '.join(missing)}" if missing else None


def _name_key(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


# -- making them ----------------------------------------------------------------------------------


def _make_ca(names: list[str], now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new authority that may sign server certificates for ``names`` (and their blocks) only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    dns, nets = permitted(names)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"describe-local on {socket.gethostname() or 'this server'}"[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "describe-local"),
    ])
    subtrees: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.IPAddress(n) for n in nets]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))  # a phone whose clock is a little behind
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_leaf(
    names: list[str], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and a server certificate for ``names`` (in its subjectAltName), signed by ``ca``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    from cryptography import x509

    return x509.KeyUsage(digital_signature=True, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                         key_agreement=False, encipher_only=False, decipher_only=False)  # fmt: skip


def _pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def pem_to_der(pem: bytes) -> bytes:
    """The first certificate in ``pem``, in DER."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """The key, owner-only from its first byte, in place whole or not at all."""
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
