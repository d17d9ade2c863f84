"""A holder's SuperNode key bound to its NodeRegistry entry: ``twopm node key`` and ``twopm node admit``.

Real anvil, a real SuperLink over TLS with ``--enable-supernode-auth`` (a local CA made by
``trainer.nodeauth.make_tls_files``), `twopm` as a child process. Every refusal is one line with
a non-zero exit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli_nodes import ok, refused, twopm

from clients.sdk import Wallet
from contracts import Anvil, Deployment
from core.net import free_port
from core.proc import spawn, terminate
from trainer.deployment import _env, _wait_port, flwr_bin
from trainer.nodeauth import make_tls_files

pytestmark = pytest.mark.usefixtures("chain_snapshot")

AdmitArgs = tuple[str, dict[str, str]]
"""The public key file ``twopm node admit`` is given, and its flags (name -> value)."""


@pytest.fixture
def stack(tmp_path: Path, anvil: Anvil, deployment: Deployment) -> Path:
    path = tmp_path / "stack.json"
    path.write_text(
        json.dumps(
            {
                "rpc_url": anvil.rpc_url,
                "chain_id": anvil.chain_id,
                "contracts": deployment.addresses,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def superlink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A SuperLink that admits only registered keys: (address, CA file)."""
    root = tmp_path_factory.mktemp("superlink")
    tls = make_tls_files(root / "tls")
    port = free_port()
    log = root / "superlink.log"
    proc = spawn(
        [flwr_bin("flower-superlink"), *tls.superlink_args(), "--enable-supernode-auth",
         "--host", "127.0.0.1", "--port", str(port)],
        log_path=log,
        env=_env(root / "home"),
    )  # fmt: skip
    try:
        _wait_port(port, proc, log, 30.0)
        yield f"127.0.0.1:{port}", tls.ca_cert
    finally:
        terminate(proc, 5.0)


def _register(holder_flags: list[str], cwd: Path) -> None:
    result = twopm("node", "register", "--name", "mine", "--url", "https://me.example", *holder_flags,
                   cwd=cwd)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_registered_holder_signs_its_node_key_and_the_superlinks_operator_admits_it_once(
    tmp_path: Path,
    holder: Wallet,
    stack: Path,
    key_flags: list[str],
    superlink: tuple[str, Path],
) -> None:
    _register(key_flags, tmp_path)
    line = ok(twopm("node", "key", "--out", "node.key", *key_flags, cwd=tmp_path), holder.address)
    assert "signed node key node.key.pub (signature in node.key.pub.sig)" in line
    assert (tmp_path / "node.key.pub").read_text().startswith("ecdsa-sha2-nistp384 ")
    assert (tmp_path / "node.key").stat().st_mode & 0o777 == 0o600
    address, ca = superlink
    admit = ["node", "admit", "node.key.pub", "--superlink", address,
             "--root-certificates", str(ca), "--stack", str(stack)]  # fmt: skip
    line = ok(twopm(*admit, cwd=tmp_path), holder.address)
    assert "admitted: SuperNode " in line and line.endswith(f"at {address}")
    # signing again reuses the key; Flower never registers a key twice
    ok(twopm("node", "key", "--out", "node.key", *key_flags, cwd=tmp_path), holder.address)
    refused(twopm(*admit, cwd=tmp_path), rf"the SuperLink refused the key of {holder.address}")


# Refusals of `twopm node key --out OUT`: what is in the working directory first, OUT, and the one
# line expected ("{address}" stands for the holder's address, the only refusals that name it).
KEY_REFUSALS: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "an unregistered holder": (
        lambda d: None,
        "node.key",
        r"{address} is not registered; run `twopm node register` first",
    ),
    "a half-present key pair": (
        lambda d: (d / "node.key").write_text("x"),
        "node.key",
        r"node.key and node.key.pub must both exist \(reuse\) or both be absent",
    ),
    "a directory as the key file": (
        lambda d: [(d / "keys").mkdir(), (d / "keys.pub").mkdir()],
        "keys",
        r"--out keys is a directory; give the private key's file name",
    ),
}


@pytest.mark.parametrize("case", KEY_REFUSALS)
def test_node_key_refuses_in_one_line_and_writes_nothing(
    case: str, tmp_path: Path, holder: Wallet, key_flags: list[str]
) -> None:
    prepare, out, pattern = KEY_REFUSALS[case]
    prepare(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    line = refused(
        twopm("node", "key", "--out", out, *key_flags, cwd=tmp_path),
        pattern.replace("{address}", holder.address),
    )
    assert (holder.address in line) == ("{address}" in pattern)
    assert sorted(tmp_path.rglob("*")) == before


_FAKE_SUPERLINK = {"--superlink": "127.0.0.1:1", "--root-certificates": "ca.crt"}


def _bad_flag(flag: str, value: str) -> Callable[[Path, Wallet, list[str]], AdmitArgs]:
    def prepare(d: Path, holder: Wallet, key_flags: list[str]) -> AdmitArgs:
        (d / "ca.crt").write_text("x")
        (d / "node.key.pub.sig").write_text("0x00")
        return "node.key.pub", {**_FAKE_SUPERLINK, flag: value}

    return prepare


def _not_a_node_key(d: Path, holder: Wallet, key_flags: list[str]) -> AdmitArgs:
    (d / "ca.crt").write_text("x")
    (d / "node.key.pub").write_text("not a key\n")
    (d / "node.key.pub.sig").write_text("0x" + "11" * 65)
    return "node.key.pub", dict(_FAKE_SUPERLINK)


def _signed_then_left(d: Path, holder: Wallet, key_flags: list[str]) -> AdmitArgs:
    _register(key_flags, d)
    ok(twopm("node", "key", "--out", "node.key", *key_flags, cwd=d), holder.address)
    ok(twopm("node", "leave", *key_flags, cwd=d), holder.address)
    return "node.key.pub", {}


def _signature_over_another_key(d: Path, holder: Wallet, key_flags: list[str]) -> AdmitArgs:
    _register(key_flags, d)
    ok(twopm("node", "key", "--out", "a.key", *key_flags, cwd=d), holder.address)
    ok(twopm("node", "key", "--out", "b.key", *key_flags, cwd=d), holder.address)
    return "b.key.pub", {"--signature-file": "a.key.pub.sig"}


# Refusals of `twopm node admit PUB --stack S FLAGS`: a preparation returning (PUB, FLAGS) and the
# one line expected ("{address}" as above). FLAGS without --superlink get the real SuperLink's.
ADMIT_REFUSALS: dict[str, tuple[Callable[[Path, Wallet, list[str]], AdmitArgs], str]] = {
    "a missing signature file": (
        _bad_flag("--signature-file", "missing.sig"),
        r"cannot read the signature missing.sig",
    ),
    "a superlink that is not host:port": (
        _bad_flag("--superlink", "nohost"),
        r"--superlink 'nohost' is not host:port",
    ),
    "missing root certificates": (
        _bad_flag("--root-certificates", "missing.crt"),
        r"--root-certificates: no such file missing.crt",
    ),
    "a file that is not a node key": (
        _not_a_node_key,
        r"node.key.pub is not an OpenSSH public key",
    ),
    "a key whose signer left the registry": (
        _signed_then_left,
        r"{address} signed this node key but is not registered in NodeRegistry",
    ),
    "a signature over another key": (
        _signature_over_another_key,
        r"signed this node key but is not registered in NodeRegistry \(or signed another key\)",
    ),
}


@pytest.mark.parametrize("case", ADMIT_REFUSALS)
def test_node_admit_refuses_in_one_line(
    case: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    holder: Wallet,
    stack: Path,
    key_flags: list[str],
) -> None:
    prepare, pattern = ADMIT_REFUSALS[case]
    public_key, flags = prepare(tmp_path, holder, key_flags)
    if "--superlink" not in flags:
        address, ca = request.getfixturevalue("superlink")
        flags = {"--superlink": address, "--root-certificates": str(ca), **flags}
    args = [a for kv in flags.items() for a in kv]
    line = refused(
        twopm("node", "admit", public_key, *args, "--stack", str(stack), cwd=tmp_path),
        pattern.replace("{address}", holder.address),
    )
    assert (holder.address in line) == ("{address}" in pattern)


def test_running_a_node_with_an_auth_key_but_without_tls_is_refused(tmp_path: Path) -> None:
    csv = tmp_path / "n.csv"
    csv.write_text("a,y\n1,0\n2,1\n3,0\n")
    (tmp_path / "node.key").write_text("x")
    refused(
        twopm(
            "node",
            "--data",
            str(csv),
            "--label",
            "y",
            "--superlink",
            "127.0.0.1:1",
            "--insecure",
            "--auth-key",
            "node.key",
            cwd=tmp_path,
        ),
        r"--auth-key needs TLS: give --root-certificates instead of --insecure",
    )
