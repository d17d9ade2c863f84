"""SuperNode authentication bound to ``NodeRegistry``: only registered data holders' nodes get in.

Flower 1.41 authenticates SuperNodes when the SuperLink runs with ``--enable-supernode-auth``
(which needs TLS): every Fleet request is signed with the node's EC key, and a key is admitted
only by ``flwr supernode register <PUBLIC_KEY_FILE>`` on the Control API. Flower accepts only
OpenSSH-format keys on NIST curves, so the holder's Ethereum key (secp256k1) cannot be the node
key, and nothing in Flower ties a node key to an outside identity. We tie it here:

1. the holder makes a node key (:func:`make_node_key`, P-384, OpenSSH format);
2. the holder signs the public key with its Ethereum key (:func:`sign_node_key`: EIP-191
   ``personal_sign`` of :func:`binding_message`, which names the chain and the ``NodeRegistry``
   so that a signature is not valid for another deployment);
3. whoever runs the SuperLink admits the key (:func:`admit_node`): it recovers the signing
   address, refuses it unless ``NodeRegistry.isRegistered`` says yes, then registers the key with
   ``flwr supernode register … --name <address>``.

A node whose key was never admitted is refused by the SuperLink itself (Flower exits it with
code 305); a signature over another key recovers another address, which is not registered.
The ServerApp then sees each node's ``name`` (the holder's address) and checks that the
operator address the node reports matches it (:mod:`trainer.server_app`).

The Control API shares the SuperLink's one port and has no authentication in the open-source
build: keep that port on loopback, or behind a proxy that lets only ``/v1/fleet/*`` through.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Admission",
    "NodeAdmissionError",
    "NodeKey",
    "TlsFiles",
    "admit_node",
    "binding_message",
    "make_node_key",
    "make_tls_files",
    "read_public_key_line",
    "recover_holder",
    "sign_node_key",
]


class NodeAdmissionError(RuntimeError):
    """A node key is refused: bad key or signature, holder not registered, or Flower said no."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a self-signed local CA and the SuperLink's certificate.

    Attributes:
        ca_cert: the CA certificate (SuperNodes and ``flwr`` trust it: ``--root-certificates``).
        cert: the SuperLink's certificate, signed by the CA (``--ssl-certfile``).
        key: the SuperLink's private key, mode 0600 (``--ssl-keyfile``).
    """

    ca_cert: Path
    cert: Path
    key: Path

    def superlink_args(self) -> list[str]:
        """``flower-superlink`` arguments for TLS with these files."""
        return [
            "--ssl-ca-certfile",
            str(self.ca_cert),
            "--ssl-certfile",
            str(self.cert),
            "--ssl-keyfile",
            str(self.key),
        ]


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)


def make_tls_files(
    directory: str | Path,
    hosts: Iterable[str] = ("127.0.0.1", "localhost"),
    valid_days: int = 30,
) -> TlsFiles:
    """Make a local CA and a SuperLink certificate for `hosts` (P-256 ECDSA, SHA-256).

    Args:
        directory: where to write ``ca.crt``, ``superlink.crt``, ``superlink.key`` (created).
        hosts: names and IP addresses the certificate is valid for.
        valid_days: lifetime of both certificates, days.

    Returns:
        The file paths.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=valid_days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twopm local SuperLink CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = ec.generate_private_key(ec.SECP256R1())
    first = next(iter(hosts), "localhost")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(d / "ca.crt", d / "superlink.crt", d / "superlink.key")
    files.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return files


@dataclass(frozen=True)
class NodeKey:
    """A SuperNode's key pair on disk.

    Attributes:
        private_key: OpenSSH-format private key, mode 0600
            (``flower-supernode --auth-supernode-private-key``).
        public_key: the ``.pub`` file, one OpenSSH line ``ecdsa-sha2-nistp384 AAAA…``.
    """

    private_key: Path
    public_key: Path

    @property
    def public_line(self) -> str:
        """The public key as one OpenSSH line without a comment."""
        return read_public_key_line(self.public_key)


def make_node_key(path: str | Path) -> NodeKey:
    """Make a P-384 ECDSA node key in OpenSSH format (what Flower 1.41 accepts).

    Args:
        path: the private key file to write (its directory is created); the public key goes
            to the same path with ``.pub`` appended.

    Returns:
        The two files.

    Raises:
        FileExistsError: if the private key file exists (a node keeps its key; re-admitting
            a node takes a new key, as Flower never registers a key twice).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = Path(path)
    if private.exists():
        raise FileExistsError(f"{private} exists; a node key is never overwritten")
    private.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    _write_private(
        private,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    public = Path(f"{private}.pub")
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b"\n"
    )
    return NodeKey(private, public)


def read_public_key_line(path: str | Path) -> str:
    """Read and check an OpenSSH EC public key on a NIST curve.

    Args:
        path: the ``.pub`` file.

    Returns:
        ``"<type> <base64>"`` (any comment dropped).

    Raises:
        NodeAdmissionError: if the file is missing, not an OpenSSH public key, or not an EC
            key on P-256, P-384 or P-521.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise NodeAdmissionError(f"cannot read node public key {p}: {exc.strerror}") from None
    try:
        key = serialization.load_ssh_public_key(raw.strip())
    except (ValueError, UnsupportedAlgorithm):
        raise NodeAdmissionError(
            f"{p} is not an OpenSSH public key (make one with `twopm node key`)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in {
        "secp256r1",
        "secp384r1",
        "secp521r1",
    }:
        raise NodeAdmissionError(f"{p} is not an EC key on a NIST curve (Flower needs P-384)")
    return " ".join(raw.decode().split()[:2])


def binding_message(public_key_line: str, chain_id: int, registry_address: str) -> str:
    """The text a holder signs to bind a node key to its address.

    Args:
        public_key_line: ``"<type> <base64>"`` of the node key.
        chain_id: the chain of the ``NodeRegistry``.
        registry_address: the ``NodeRegistry`` address (0x hex).

    Returns:
        Four lines naming the purpose, chain, registry and key.
    """
    return (
        "2PM SuperNode key\n"
        f"chain: {int(chain_id)}\n"
        f"NodeRegistry: {registry_address.lower()}\n"
        f"key: {public_key_line}"
    )


def sign_node_key(
    public_key_line: str, holder_key: Any, chain_id: int, registry_address: str
) -> str:
    """Sign a node key with the holder's Ethereum key (EIP-191 ``personal_sign``).

    Args:
        public_key_line: ``"<type> <base64>"`` of the node key.
        holder_key: the holder's private key (0x hex, bytes, or an eth_account account).
        chain_id: the chain of the ``NodeRegistry``.
        registry_address: the ``NodeRegistry`` address.

    Returns:
        The 65-byte signature, 0x hex.
    """
    from eth_account import Account
    from eth_account.messages import encode_defunct

    key = getattr(holder_key, "key", holder_key)
    message = encode_defunct(text=binding_message(public_key_line, chain_id, registry_address))
    signed = Account.sign_message(message, private_key=key)
    return "0x" + bytes(signed.signature).hex()


def recover_holder(
    public_key_line: str, signature: str, chain_id: int, registry_address: str
) -> str:
    """The address that signed a node key.

    Args:
        public_key_line: ``"<type> <base64>"`` of the node key.
        signature: 0x hex, 65 bytes.
        chain_id: the chain of the ``NodeRegistry``.
        registry_address: the ``NodeRegistry`` address.

    Returns:
        The checksummed address (a signature over another key yields another address).

    Raises:
        NodeAdmissionError: if the signature is not 65 bytes of hex or cannot be recovered.
    """
    from eth_account import Account
    from eth_account.messages import encode_defunct

    sig = signature[2:] if signature.startswith("0x") else signature
    try:
        raw = bytes.fromhex(sig)
    except ValueError:
        raise NodeAdmissionError("the signature is not hex") from None
    if len(raw) != 65:
        raise NodeAdmissionError(f"the signature has {len(raw)} bytes, expected 65")
    message = encode_defunct(text=binding_message(public_key_line, chain_id, registry_address))
    try:
        return str(Account.recover_message(message, signature=raw))
    except Exception as exc:  # eth_keys' BadSignature and friends
        raise NodeAdmissionError(f"the signature does not recover: {exc}") from None


@dataclass(frozen=True)
class Admission:
    """A node key admitted to a SuperLink.

    Attributes:
        address: the registered holder who signed the key.
        node_id: the SuperNode id Flower gave the key.
    """

    address: str
    node_id: int


def admit_node(
    *,
    public_key_file: str | Path,
    signature: str,
    registry: Any,
    chain_id: int,
    flwr_home: Path,
    connection: str = "twopm",
    timeout_s: float = 60.0,
) -> Admission:
    """Check a node key's holder in ``NodeRegistry``, then register the key with the SuperLink.

    Args:
        public_key_file: the node's OpenSSH public key.
        signature: the holder's signature of :func:`binding_message` (0x hex).
        registry: the web3 ``NodeRegistry`` contract.
        chain_id: the chain id the signature names.
        flwr_home: FLWR_HOME whose ``config.toml`` names the SuperLink `connection` (with its
            CA as ``root-certificates``).
        connection: the connection name in that file.
        timeout_s: deadline of the ``flwr`` call, seconds.

    Returns:
        The holder's address and the node id.

    Raises:
        NodeAdmissionError: bad key or signature, holder not registered, the SuperLink
            refused (e.g. the key was registered before: Flower never takes a key twice) or
            did not answer within `timeout_s`, or `flwr` could not be run.
    """
    from trainer.deployment import _env, flwr_bin

    line = read_public_key_line(public_key_file)
    address = recover_holder(line, signature, chain_id, str(registry.address))
    if not registry.functions.isRegistered(address).call():
        raise NodeAdmissionError(
            f"{address} signed this node key but is not registered in NodeRegistry"
            " (or signed another key); run `twopm node register` first"
        )
    try:
        proc = subprocess.run(
            [
                flwr_bin("flwr"),
                "supernode",
                "register",
                str(public_key_file),
                connection,
                "--name",
                address,
                "--format",
                "json",
            ],
            env=_env(flwr_home),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed flwr
        raise NodeAdmissionError(
            f"the SuperLink did not answer within {timeout_s:g} s; the key of {address} was "
            "not registered"
        ) from None
    except OSError as exc:
        raise NodeAdmissionError(f"cannot run flwr: {exc.strerror or exc}") from None
    try:
        payload = json.loads(proc.stdout[proc.stdout.index("{") :])
        if not payload.get("success"):
            raise ValueError(payload)
        node_id = int(payload["node-id"])
    except (ValueError, KeyError, TypeError):
        detail = " ".join((proc.stdout + proc.stderr).split())[-300:]
        raise NodeAdmissionError(f"the SuperLink refused the key of {address}: {detail}") from None
    return Admission(address, node_id)
