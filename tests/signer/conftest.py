"""Fixtures: a real anvil with the 2PM contracts, and real signer processes.

Every signer runs as its own ``python -m signer serve`` process on a free loopback port with
its own state directory; they share one operator keystore (encrypted once per session, since
scrypt takes about a second).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from service_support import deploy_for_operator
from signer_support import DEFAULT_LIMITS, LEDGER_DOMAIN, PASSWORD, Keystore, SignerProcess

from contracts.chain import Anvil
from contracts.deploy import Deployment
from signer import L1FeeCap, Limits, TypedDataDomain, init_state, policy_for_deployment
from signer._keystore import write_keystore


@pytest.fixture(scope="session")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    root = tmp_path_factory.mktemp("keystore")
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    account = Account.create()
    path = root / "keystore.json"
    # A throwaway key: a cheap scrypt cost keeps each signer start fast.
    address = write_keystore(path, bytes(account.key), PASSWORD, scrypt_n=2**12)
    return Keystore(path, password_file, address, bytes(account.key))


@pytest.fixture(scope="session")
def deployment(anvil: Anvil, keystore: Keystore) -> Deployment:
    """Overrides the suite-wide deployment: here the operator is the signer's own key."""
    return deploy_for_operator(anvil, keystore.address)


@pytest.fixture(scope="session")
def signer_factory(
    tmp_path_factory: pytest.TempPathFactory,
    keystore: Keystore,
    deployment: Deployment,
) -> Iterator[Callable[..., SignerProcess]]:
    """Make a signer on a fresh state directory: ``signer_factory(limits=..., extra_args=[...])``.

    The caller stops what it made; tests take :func:`make_signer`, which does. Whatever is still
    running at the end of the session is killed here (a fixture that failed before its teardown).
    """
    started: list[SignerProcess] = []

    def make(
        limits: Limits = DEFAULT_LIMITS,
        extra_args: list[str] | None = None,
        start: bool = True,
        l1_fee: L1FeeCap | None = None,
    ) -> SignerProcess:
        state = tmp_path_factory.mktemp("signer")
        domain = TypedDataDomain(
            name=LEDGER_DOMAIN,
            version="1",
            chain_id=deployment.chain_id,
            verifying_contract=deployment.addresses["InferenceLedger"],
            primary_types=frozenset({"OperatorVoucher"}),
        )
        policy = policy_for_deployment(
            deployment.addresses,
            chain_id=deployment.chain_id,
            limits=limits,
            typed_data=[domain],
            l1_fee=l1_fee,
        )
        made = init_state(
            state,
            private_key=keystore.private_key,
            password=PASSWORD,
            policy_toml=policy,
            callers={"tester": None, "recorder": None, "settler": ["settle"]},
            scrypt_n=2**12,  # a throwaway key: a cheap scrypt cost keeps each start fast
        )
        assert made.address == keystore.address
        proc = SignerProcess(state, made.password_file, made.secrets, extra_args or [])
        started.append(proc)
        return proc.start() if start else proc

    yield make
    for proc in started:
        proc.kill9()


@pytest.fixture
def make_signer(
    signer_factory: Callable[..., SignerProcess],
) -> Iterator[Callable[..., SignerProcess]]:
    """``signer_factory`` for one test: the signers it starts are killed when the test ends."""
    made: list[SignerProcess] = []

    def make(*, start: bool = True, **kwargs: Any) -> SignerProcess:
        proc = signer_factory(**kwargs, start=False)
        made.append(proc)  # before starting: a start that fails half-way is stopped too
        return proc.start() if start else proc

    yield make
    for proc in made:
        proc.kill9()


@pytest.fixture(scope="session")
def signer(signer_factory: Callable[..., SignerProcess]) -> SignerProcess:
    """A signer shared by the tests that sign without broadcasting (and never stop it)."""
    return signer_factory()
