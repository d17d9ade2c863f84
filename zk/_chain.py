"""Putting a model version's proof verifier on chain, and checking proofs through it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from contracts import load_artifact
from zk._setup import verifier_contract_name

#: The ABI every 2PM verifier answers, whatever the proof system behind it (docs/proofs.md).
VERIFY_PROOF_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "verifyProof",
        "stateMutability": "view",
        "inputs": [
            {"name": "proof", "type": "bytes"},
            {"name": "instances", "type": "uint256[]"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
#: Gas given to a verifying call: above a Groth16 check of 32 public signals (~420k), below what an
#: off-curve point could burn in an unbounded call (FACTS.md: 988k of a 1M limit).
VERIFY_CALL_GAS = 1_000_000


@dataclass(frozen=True)
class OnChainCheck:
    """The chain's answer for one proof.

    Attributes:
        verified: What ``verifyProof`` returned (False when it reverted).
        gas: Gas a transaction calling ``verifyProof`` used (21k base and calldata included), when a
            sender was given; None otherwise. ``eth_estimateGas`` cannot measure it: a verifier starved
            of gas returns false instead of reverting, so the estimate finds the cheapest *false*.
    """

    verified: bool
    gas: int | None = None


def deploy_model_verifier(
    transactor: Any, deployment: Any, n_features: int, model_commitment: int
) -> str:
    """Deploy the ``LogitProofVerifier`` of one model version.

    Anyone may deploy it (it holds no rights); it counts once the subnet owner records it with
    ``SubnetRegistry.setModelVerifier``.

    Args:
        transactor: ``contracts.Transactor`` paying for the deployment.
        deployment: ``contracts.Deployment`` holding ``LogitGroth16Verifier<F>``.
        n_features: Features F of the model.
        model_commitment: The version's parameter commitment (``zk.model_commitment``).

    Returns:
        The checksummed address.

    Raises:
        KeyError: The deployment has no Groth16 verifier for F features (only local chains get the
            development verifiers; see zk/_setup.py).
    """
    groth16 = deployment.addresses[verifier_contract_name(n_features)]
    contract = transactor.deploy("LogitProofVerifier", groth16, n_features, model_commitment)
    return str(Web3.to_checksum_address(contract.address))


def deploy_version_verifier(
    transactor: Any, deployment: Any, n_features: int, model_commitment: int
) -> str:
    """Deploy the verifier a model version records: one-row proofs, and batches where the shape has one.

    With a ``BatchGroth16Verifier<F>`` in the deployment (F = 3 today), deploys the version's
    ``LogitProofVerifier`` and ``BatchProofVerifier`` and a ``ModelProofVerifier`` routing between
    them (by where the commitment sits in ``instances``), and returns the router; otherwise returns
    the ``LogitProofVerifier`` alone. Either answers ``verifyProof(bytes, uint256[])``.

    Raises:
        KeyError: No ``LogitGroth16Verifier<F>`` in the deployment.
    """
    logit = deploy_model_verifier(transactor, deployment, n_features, model_commitment)
    batch_name = f"BatchGroth16Verifier{n_features}"
    if batch_name not in deployment.addresses:
        return logit
    from zk._batch import deploy_batch_verifier

    batch = deploy_batch_verifier(transactor, deployment, n_features, model_commitment)
    router = transactor.deploy("ModelProofVerifier", logit, batch, model_commitment)
    return str(Web3.to_checksum_address(router.address))


def check_on_chain(
    w3: Web3,
    verifier: str,
    proof: bytes,
    instances: Sequence[int],
    gas: int = VERIFY_CALL_GAS,
    sender: Any = None,
) -> OnChainCheck:
    """Call ``verifyProof(proof, instances)`` on ``verifier`` with bounded gas.

    Args:
        w3: Client of the chain.
        verifier: The version's verifier address.
        proof: Proof bytes.
        instances: Public signals (uint256 each).
        gas: Gas limit of the call (and of the measuring transaction).
        sender: A ``contracts.Transactor``; when given, a real transaction also calls ``verifyProof``
            so that its gas is measured (it changes no state).

    Returns:
        The answer (a revert counts as not verified) and, with a sender, the gas.
    """
    contract = w3.eth.contract(address=Web3.to_checksum_address(verifier), abi=VERIFY_PROOF_ABI)
    call = contract.functions.verifyProof(bytes(proof), [int(v) for v in instances])
    try:
        verified = bool(call.call({"gas": gas}))
    except (ContractLogicError, Web3RPCError, ValueError):
        return OnChainCheck(False)
    if sender is None:
        return OnChainCheck(verified)
    receipt = sender.transact(call, gas=gas)
    return OnChainCheck(verified, int(receipt["gasUsed"]))


def model_verifier_of(deployment: Any, subnet_id: int, version: int) -> tuple[str | None, int]:
    """The verifier address and commitment a subnet's model version has in SubnetRegistry.

    Returns:
        ``(address, commitment)``; ``(None, 0)`` when none is recorded.
    """
    registry = deployment.contract("SubnetRegistry")
    address, commitment = registry.functions.modelVerifierOf(int(subnet_id), int(version)).call()
    if int(address, 16) == 0:
        return None, 0
    return str(Web3.to_checksum_address(address)), int(commitment)


def groth16_abi(n_features: int) -> list[dict[str, Any]]:
    """ABI of ``LogitGroth16Verifier<F>`` (for tests and tools that call it directly)."""
    return list(load_artifact(verifier_contract_name(n_features)).abi)


def record_model_verifier(
    *,
    deployment: Any,
    deployer: Any,
    owner: Any,
    subnet_id: int,
    version: int,
    weights: Sequence[float],
    intercept: float,
    keys_dir: Any = None,
) -> tuple[str, int]:
    """Make a published model version provable: deploy its verifier and record it in SubnetRegistry.

    Computes the version's parameter commitment with the circuit, deploys its verifier
    (:func:`deploy_version_verifier`: a ``LogitProofVerifier``, plus batch routing for 3 features) bound to it (paid by ``deployer``, who gains no rights), then has the subnet owner call
    ``SubnetRegistry.setModelVerifier``.

    Args:
        deployment: ``contracts.Deployment`` (with ``LogitGroth16Verifier<F>``: local chains only).
        deployer: ``contracts.Transactor`` paying for the verifier.
        owner: The subnet owner's ``contracts.Transactor`` (a local key, or the operator's
            through ``signer.RemoteSigner``, which uses the idempotency key).
        subnet_id: The subnet.
        version: The published version.
        weights: The version's coefficients, shape (F,), in feature order.
        intercept: Its intercept.
        keys_dir: Cache of the circuit keys (``zk.default_cache_dir()`` when None).

    Returns:
        ``(verifier address, model commitment)``.

    Raises:
        KeyError: No Groth16 verifier for F features in the deployment.
        zk.SetupError: The circuit keys could not be made.
        zk.FixedPointRangeError: A parameter is outside the fixed-point range.
    """
    from zk._prover import model_commitment
    from zk._setup import ensure_keys

    n_features = len(weights)
    if verifier_contract_name(n_features) not in deployment.addresses:
        raise KeyError(f"no Groth16 verifier for {n_features} features in this deployment")
    commitment = model_commitment(ensure_keys(n_features, keys_dir), weights, intercept)
    verifier = deploy_version_verifier(deployer, deployment, n_features, commitment)
    registry = deployment.contract("SubnetRegistry")
    call = registry.functions.setModelVerifier(int(subnet_id), int(version), verifier, commitment)
    owner.transact(call, idempotency_key=f"zk-verifier-{subnet_id}-{version}")
    return verifier, commitment
