"""Proof of training: a data holder's local sums at the published model, on the rows it committed to.

Protocol (docs/proofs.md, "Proof of training"):

1. Before training, each holder encodes its rows in fixed point (:func:`encode_rows`), draws a secret
   salt, and writes the Poseidon root of (salt, packed rows) in ``DataRegistry`` (:func:`data_root`,
   :func:`commit_data`). The salt keeps the root from revealing low-entropy rows.
2. After the fit is published (and its ``model_commitment`` recorded in ``SubnetRegistry``), each
   holder proves with the Groth16 circuit ``zk/circuits/training.circom`` that, on its committed rows
   and at the committed parameters, its row count is ``n``, the gradient of the log-likelihood is
   ``g`` and the sums of squared features are ``S`` (:func:`prove_training`), and submits the proof to
   ``TrainingProofVerifier``, which refuses it unless the data root is the holder's commitment, the
   model commitment is the version's, and the Groth16 check passes (:func:`submit_training_proof`).
3. Anyone runs :func:`verify_training` (``twopm verify training --subnet N``): every contributor has a
   proof recorded on chain that still verifies; the proven row counts give back the contributors'
   shares published on chain; and the summed gradient is within :func:`stationarity_tolerance` of 0
   (the first-order condition of the unpenalised maximum-likelihood fit).

The provable sigmoid: ``eta`` is truncated to 2^-16, clamped to [-16, 16), and evaluated by one of 32
cubic pieces (``zk/circuits/sigmoid_table.circom``, Chebyshev interpolation on each unit interval).
Its error against the exact sigmoid is at most :data:`SIGMOID_ERROR` (the table's 3.64e-5, checked
exhaustively over all 2^21 inputs in tests/zk, plus 2^-18 for the truncation and 1.2e-7 for the clamp).

Fixed point: features at 2^16 (:data:`TRAIN_X_SCALE_BITS`), |feature| < 2^13 (:data:`MAX_ABS_FEATURE`);
the parameters as in :mod:`zk._fixed` (weights 2^32, intercept 2^56), so the model commitment is the
logit circuit's. Gradient outputs are exact integers: intercept component at 2^80, feature components
at 2^96; sums of squares at 2^32.

Shapes: a circuit has a fixed row capacity N (padding rows carry ``present = 0``); only
:data:`TRAINING_SHAPES` have keys and an on-chain verifier. The 30-feature breast-cancer model is not
covered: see docs/proofs.md for its constraint count and why its setup does not fit this machine.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from zk._fixed import FIELD_MODULUS, FixedPointRangeError, encode_model, from_field, to_field

CIRCUITS = Path(__file__).resolve().parent / "circuits"
#: Fractional bits of a training feature.
TRAIN_X_SCALE_BITS = 16
#: Signed bit width the circuit checks for every encoded feature.
TRAIN_X_BITS = 36
#: Largest |feature| accepted (keeps the error bound's weight-rounding term below 2^-20 per feature).
MAX_ABS_FEATURE = float(1 << 13)
#: Scale bits of the residual (sigmoid output) and of the gradient's intercept component.
RESIDUAL_SCALE_BITS = 80
#: Feature count -> row capacity N of the training circuits with keys and an on-chain verifier.
TRAINING_SHAPES: dict[int, int] = {3: 16}
#: log2 of the powers of tau the training circuits need (5,546 constraints for N = 16, F = 3).
TRAINING_PTAU_POWER = 13
#: Max |table - sigmoid| of the 32 cubic pieces over all 2^21 inputs in [-16, 16) (tests/zk).
SIGMOID_TABLE_ERROR = 3.64e-5
#: Bound on |sigmoid(eta) - circuit sigmoid| for any eta: table + truncation to 2^-16 (slope <= 1/4)
#: + clamping at +-16 (sigmoid(-16) = 1.13e-7).
SIGMOID_ERROR = SIGMOID_TABLE_ERROR + 2.0**-18 + 1.13e-7
#: Per-row slack for the fit's own convergence (gtol 1e-10 per row, standardised) and float rounding.
CONVERGENCE_SLACK_PER_ROW = 1e-6


class TrainingProofError(RuntimeError):
    """A training proof could not be made or submitted (the message says why)."""


def training_verifier_name(n_features: int) -> str:
    """Name of the snarkjs Groth16 verifier contract of the F-feature training circuit."""
    return f"TrainingGroth16Verifier{n_features}"


def training_proof_verifier_name(n_features: int) -> str:
    """Key of the F-feature ``TrainingProofVerifier`` in a deployment's addresses."""
    return f"TrainingProofVerifier{n_features}"


def sigmoid_table() -> list[list[int]]:
    """The circuit's cubic pieces, read from ``sigmoid_table.circom`` (the only copy).

    Returns:
        ``a[k][s]`` for k = 0..3 (power of t) and segment s = 0..31, integers at scale 2^32.
    """
    text = (CIRCUITS / "sigmoid_table.circom").read_text()
    rows = re.findall(r"\[([-0-9, ]+)\]", text.split("var a[4][32] =", 1)[1])
    table = [[int(v) for v in row.split(",")] for row in rows[:4]]
    if len(table) != 4 or any(len(r) != 32 for r in table):
        raise ValueError("sigmoid_table.circom is malformed")
    return table


_TABLE: list[list[int]] | None = None


def fixed_sigmoid(t: int) -> int:
    """The circuit's sigmoid of ``t / 2^16`` (``t`` a signed integer), at scale 2^80, exactly."""
    global _TABLE
    if _TABLE is None:
        _TABLE = sigmoid_table()
    v = t + (1 << 20)
    if v < 0:
        seg, u = 0, 0
    elif v >= 1 << 21:
        seg, u = 31, (1 << 16) - 1
    else:
        seg, u = v >> 16, v & 0xFFFF
    a = [_TABLE[k][seg] for k in range(4)]
    return (a[0] << 48) + ((a[1] * u) << 32) + ((a[2] * u * u) << 16) + a[3] * u * u * u


@dataclass(frozen=True)
class EncodedRows:
    """A holder's rows in the circuit's fixed point, padded to the circuit's capacity.

    Attributes:
        x: N rows of F signed integers (scale 2^16); padding rows are zeros.
        y: N labels in {0, 1}; 0 for padding.
        present: N flags, 1 for a real row.
    """

    x: tuple[tuple[int, ...], ...]
    y: tuple[int, ...]
    present: tuple[int, ...]

    @property
    def n_rows(self) -> int:
        """Real rows."""
        return sum(self.present)


def encode_rows(x: Sequence[Sequence[float]], y: Sequence[float], capacity: int) -> EncodedRows:
    """Encode rows for a training circuit of ``capacity`` rows.

    Args:
        x: Features, shape (n, F), raw units, in the model's feature order.
        y: Labels, shape (n,), each 0 or 1.
        capacity: The circuit's row capacity N >= n.

    Returns:
        The padded rows.

    Raises:
        FixedPointRangeError: A feature is not finite or |feature| >= 2^13.
        ValueError: More rows than ``capacity``, ragged rows, or a label other than 0/1.
    """
    if len(x) != len(y):
        raise ValueError(f"{len(x)} feature rows but {len(y)} labels")
    if len(x) > capacity:
        raise ValueError(f"{len(x)} rows do not fit a training circuit of {capacity} rows")
    if not x:
        raise ValueError("no rows")
    n_features = len(x[0])
    rows: list[tuple[int, ...]] = []
    for i, row in enumerate(x):
        if len(row) != n_features:
            raise ValueError(f"row {i} has {len(row)} features, not {n_features}")
        enc = []
        for j, v in enumerate(row):
            v = float(v)
            if not math.isfinite(v) or abs(v) >= MAX_ABS_FEATURE:
                raise FixedPointRangeError(
                    f"row {i} feature {j} = {v} is outside the training proof's range "
                    f"(|value| < {MAX_ABS_FEATURE:g})"
                )
            enc.append(round(v * (1 << TRAIN_X_SCALE_BITS)))
        rows.append(tuple(enc))
    labels = []
    for i, v in enumerate(y):
        if float(v) not in (0.0, 1.0):
            raise ValueError(f"row {i} has label {v}, not 0 or 1")
        labels.append(int(float(v)))
    pad = capacity - len(rows)
    return EncodedRows(
        tuple(rows) + ((0,) * n_features,) * pad,
        tuple(labels) + (0,) * pad,
        (1,) * len(rows) + (0,) * pad,
    )


def fixed_training_sums(
    rows: EncodedRows, weights: Sequence[float], intercept: float
) -> tuple[int, list[int], list[int]]:
    """What the circuit computes, in exact integers (the reference for tests and for provers).

    Returns:
        ``(n, grad, sumsq)``: grad[0] at 2^80, grad[1 + j] at 2^96, sumsq[j] at 2^32 (signed ints).
    """
    w, b = encode_model(weights, intercept)
    f = len(w)
    grad = [0] * (f + 1)
    sumsq = [0] * f
    for xi, yi, pi in zip(rows.x, rows.y, rows.present, strict=True):
        eta = 256 * sum(wj * xj for wj, xj in zip(w, xi, strict=True)) + b
        r = pi * ((yi << RESIDUAL_SCALE_BITS) - fixed_sigmoid(eta >> 40))
        grad[0] += r
        for j in range(f):
            grad[j + 1] += xi[j] * r
            sumsq[j] += pi * xi[j] * xi[j]
    return rows.n_rows, grad, sumsq


def circuit_input(
    rows: EncodedRows, salt: int, weights: Sequence[float], intercept: float
) -> dict[str, Any]:
    """The training circuit's input signals (decimal strings of field elements).

    Raises:
        FixedPointRangeError: A parameter is outside the fixed-point range.
        ValueError: ``weights`` and the rows differ in feature count, or the salt is not a field element.
    """
    if not 0 <= salt < FIELD_MODULUS:
        raise ValueError("the salt must be a BN254 scalar field element")
    if len(rows.x[0]) != len(weights):
        raise ValueError(f"rows have {len(rows.x[0])} features, the model {len(weights)}")
    w, b = encode_model(weights, intercept)
    return {
        "x": [[str(to_field(v)) for v in row] for row in rows.x],
        "y": [str(v) for v in rows.y],
        "present": [str(v) for v in rows.present],
        "salt": str(salt),
        "w": [str(to_field(v)) for v in w],
        "b": str(to_field(b)),
    }


def new_salt() -> int:
    """A fresh secret salt for a data commitment (uniform in the scalar field)."""
    return secrets.randbelow(FIELD_MODULUS)


@dataclass(frozen=True)
class TrainingSums:
    """The public signals of a training proof, decoded.

    Attributes:
        n_rows: Rows the sums cover.
        grad: Gradient of the log-likelihood (intercept first), shape (F + 1,), raw units.
        sumsq: Sums of squared features, shape (F,).
        data_root: The data commitment the rows hash to.
        model_commitment: The parameter commitment the sums were computed at.
    """

    n_rows: int
    grad: tuple[float, ...]
    sumsq: tuple[float, ...]
    data_root: int
    model_commitment: int

    @classmethod
    def from_instances(cls, instances: Sequence[int], n_features: int) -> TrainingSums:
        """Decode ``[n, grad_0..grad_F, sumsq_0..sumsq_{F-1}, dataRoot, modelCommitment]``.

        Raises:
            ValueError: Wrong length or a value that is not a field element.
        """
        f = n_features
        if len(instances) != 2 * f + 4:
            raise ValueError(f"a training proof of {f} features has {2 * f + 4} public signals")
        v = [int(i) for i in instances]
        grad = [from_field(v[1]) / 2.0**RESIDUAL_SCALE_BITS] + [
            from_field(g) / 2.0 ** (RESIDUAL_SCALE_BITS + TRAIN_X_SCALE_BITS) for g in v[2 : f + 2]
        ]
        sumsq = [from_field(s) / 2.0 ** (2 * TRAIN_X_SCALE_BITS) for s in v[f + 2 : 2 * f + 2]]
        return cls(v[0], tuple(grad), tuple(sumsq), v[2 * f + 2], v[2 * f + 3])


def stationarity_tolerance(
    n_rows: int, sumsq: Sequence[float], weights: Sequence[float]
) -> list[float]:
    """How far from 0 the proven, summed gradient may be at an exact maximum-likelihood fit.

    The proven gradient differs from the exact one at the float data and coefficients by, per row i
    and component j, |x_ij| times the residual error plus the feature rounding times |residual| <= 1:

        |g_j - g*_j| <= e_r * sum_i |x_ij| + n * 2^-17,
        e_r = SIGMOID_ERROR + (||w||_1 * 2^-17 + F * 2^-20) / 4,

    (e_r: sigmoid approximation, plus the logit moved by rounding each feature to 2^-17 and each weight
    to 2^-33, times the sigmoid's slope <= 1/4), and sum_i |x_ij| <= sqrt(n * S_j) (Cauchy-Schwarz,
    S_j the proven sum of squares; S = n for the intercept). Added: CONVERGENCE_SLACK_PER_ROW * n for the
    fit's own stopping rule.

    Args:
        n_rows: Pooled rows n.
        sumsq: Pooled sums of squared features, shape (F,).
        weights: The model's coefficients, shape (F,).

    Returns:
        One tolerance per gradient component, intercept first, shape (F + 1,).
    """
    f = len(weights)
    e_r = SIGMOID_ERROR + (sum(abs(float(v)) for v in weights) * 2.0**-17 + f * 2.0**-20) / 4
    slack = n_rows * (2.0**-17 + CONVERGENCE_SLACK_PER_ROW)
    return [e_r * math.sqrt(n_rows * s) + slack for s in [float(n_rows), *map(float, sumsq)]]


# ----------------------------------------------------------------------------------- proving


@dataclass(frozen=True)
class TrainingProof:
    """A holder's proof of its local sums.

    Attributes:
        proof: 256 bytes, ``abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)``.
        instances: ``[n, grad_0..grad_F, sumsq_0..sumsq_{F-1}, dataRoot, modelCommitment]``.
        n_features: F.
        proving_s: Seconds the worker spent on witness and proof.
    """

    proof: bytes
    instances: tuple[int, ...]
    n_features: int
    proving_s: float

    @property
    def sums(self) -> TrainingSums:
        """The decoded public signals."""
        return TrainingSums.from_instances(self.instances, self.n_features)


def _pool_call(request: dict[str, Any]) -> dict[str, Any]:
    from zk._prover import ProverPool

    async def run() -> dict[str, Any]:
        async with ProverPool(workers=1, max_pending=1, timeout_s=600.0) as pool:
            return await pool._call(request)

    return asyncio.run(run())


def data_root(rows: EncodedRows, salt: int, keys: Any = None) -> int:
    """The Poseidon commitment of (salt, rows) the circuit computes (one witness, no proof).

    Args:
        rows: The holder's encoded rows (capacity = the circuit's N).
        salt: The holder's secret salt.
        keys: ``zk.CircuitKeys`` of the training circuit; made on first use when None.

    Raises:
        zk.ProofError: The worker failed.
        zk.SetupError: The keys could not be made.
    """
    from zk._setup import ensure_training_keys

    f = len(rows.x[0])
    keys = keys or ensure_training_keys(f)
    answer = _pool_call(
        {
            "op": "outputs",
            "wasm": str(keys.wasm),
            "zkey": str(keys.zkey),
            "n_outputs": 2 * f + 4,
            "input": circuit_input(rows, salt, [0.0] * f, 0.0),
        }
    )
    return int(answer["outputs"][2 * f + 2])


def prove_training(
    rows: EncodedRows, salt: int, weights: Sequence[float], intercept: float, keys: Any = None
) -> TrainingProof:
    """Prove a holder's local sums at the published parameters on its committed rows.

    Args:
        rows: The rows committed to (same encoding, same padding).
        salt: The commitment's salt.
        weights: The published coefficients, shape (F,), raw units.
        intercept: The published intercept.
        keys: ``zk.CircuitKeys`` of the training circuit; made on first use when None.

    Returns:
        The proof and its public signals.

    Raises:
        zk.ProofError: The worker failed (for example a value outside the circuit's ranges).
        zk.SetupError: The keys could not be made.
    """
    from zk._prover import PROOF_BYTES
    from zk._setup import ensure_training_keys

    f = len(weights)
    keys = keys or ensure_training_keys(f)
    answer = _pool_call(
        {
            "op": "prove",
            "wasm": str(keys.wasm),
            "zkey": str(keys.zkey),
            "input": circuit_input(rows, salt, weights, intercept),
        }
    )
    proof = bytes.fromhex(str(answer["proof"])[2:])
    if len(proof) != PROOF_BYTES:
        raise TrainingProofError(f"the prover returned {len(proof)} bytes")
    return TrainingProof(
        proof, tuple(int(v) for v in answer["public"]), f, float(answer["proving_s"])
    )


# ----------------------------------------------------------------------------------- chain


def commit_data(transactor: Any, deployment: Any, root: int) -> int:
    """Write a data commitment in ``DataRegistry`` (the holder must be a registered node).

    Returns:
        The commitment id.

    Raises:
        contracts.ContractError: The registry refused it (unregistered holder, zero root).
    """
    registry = deployment.contract("DataRegistry")
    receipt = transactor.transact(registry.functions.commitData(int(root)))
    events = registry.events.DataCommitted().process_receipt(receipt)
    return int(events[0]["args"]["commitmentId"])


def submit_training_proof(
    transactor: Any,
    deployment: Any,
    subnet_id: int,
    version: int,
    commitment_id: int,
    proof: TrainingProof,
) -> dict[str, Any]:
    """Submit a training proof to the F-feature ``TrainingProofVerifier`` (refused unless it verifies).

    Returns:
        The transaction receipt.

    Raises:
        KeyError: The deployment has no training verifier for F features.
        contracts.ContractError: The verifier refused the proof (wrong rows, wrong model, bad proof,
            not a contributor, or a commitment made after publication).
    """
    verifier = deployment.contract(training_proof_verifier_name(proof.n_features))
    receipt: dict[str, Any] = transactor.transact(
        verifier.functions.submit(
            int(subnet_id), int(version), int(commitment_id), proof.proof, list(proof.instances)
        ),
        gas=1_500_000,
    )
    return receipt


@dataclass
class TrainingVerification:
    """What :func:`verify_training` found.

    Attributes:
        verified: Every check passed.
        subnet_id: The subnet.
        version: The model version checked.
        holders: Per contributor: ``address``, ``n_rows``, ``proof_verified_on_chain``,
            ``data_commitment_id``, ``data_root``.
        n_rows: Pooled proven rows.
        shares_match: The proven row counts give back the shares published on chain.
        max_abs_gradient: max_j |g_j| of the pooled proven gradient (raw units).
        gradient: The pooled proven gradient, intercept first.
        tolerance: Per-component tolerance (:func:`stationarity_tolerance`).
        stationary: |g_j| <= tolerance_j for every j.
        problems: One line per failed check.
    """

    verified: bool
    subnet_id: int
    version: int
    holders: list[dict[str, Any]] = field(default_factory=list)
    n_rows: int = 0
    shares_match: bool = False
    max_abs_gradient: float | None = None
    gradient: list[float] = field(default_factory=list)
    tolerance: list[float] = field(default_factory=list)
    stationary: bool = False
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``twopm demo``'s ``training_verification``)."""
        return {
            "verified": self.verified,
            "subnet_id": self.subnet_id,
            "version": self.version,
            "holders": self.holders,
            "n_rows": self.n_rows,
            "shares_match": self.shares_match,
            "max_abs_gradient": self.max_abs_gradient,
            "gradient": self.gradient,
            "tolerance": self.tolerance,
            "stationary": self.stationary,
            "problems": self.problems,
        }


def shares_from_rows(rows: dict[str, int], total_bps: int = 10_000) -> dict[str, int]:
    """Contributors' shares in bps from their rows (same rule as ``trainer.publish.contributor_shares``).

    Hamilton's largest remainder on ``total_bps - k`` after 1 bp each; ties to the lower address.

    Args:
        rows: Checksummed address -> rows.
        total_bps: What the shares add up to.

    Returns:
        Address -> share in bps.
    """
    addrs = sorted(rows, key=lambda a: int(a, 16))
    total = sum(rows.values())
    spare = total_bps - len(addrs)
    exact = [spare * rows[a] / total for a in addrs]
    shares = [1 + int(e) for e in exact]
    left = total_bps - sum(shares)
    order = sorted(range(len(addrs)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in order[:left]:
        shares[i] += 1
    return dict(zip(addrs, shares, strict=True))


def verify_training(
    deployment: Any,
    subnet_id: int,
    version: int | None = None,
    weights: Sequence[float] | None = None,
) -> TrainingVerification:
    """Check a model version's training from the chain alone (plus its published coefficients).

    For every contributor of the version: its proof recorded by ``TrainingProofVerifier`` (event
    ``TrainingProven``) verifies again through the verifier's ``verifyProof`` (an ``eth_call``), its
    data root is its commitment in ``DataRegistry`` and its model commitment the version's. Then the
    proven row counts must give back the shares in ``SubnetRegistry``, and the pooled gradient must be
    within :func:`stationarity_tolerance`.

    Args:
        deployment: ``contracts.Deployment`` with a web3 client.
        subnet_id: The subnet.
        version: The model version (the current one when None).
        weights: The version's coefficients (for the tolerance); read from the bundle at the version's
            ``artifactUri`` (``file://`` only) and checked against its model hash when None.

    Returns:
        The findings; ``verified`` is the conjunction of every check.
    """
    registry = deployment.contract("SubnetRegistry")
    if version is None:
        version = int(registry.functions.currentVersion(int(subnet_id)).call())
    out = TrainingVerification(False, int(subnet_id), int(version))
    model = registry.functions.modelOf(int(subnet_id), int(version)).call()
    artifact_uri, contributors, shares = model[4], list(model[5]), [int(s) for s in model[6]]
    _, commitment = registry.functions.modelVerifierOf(int(subnet_id), int(version)).call()
    if int(commitment) == 0:
        out.problems.append("the version has no model commitment in SubnetRegistry")
        return out
    if weights is None:
        weights = _weights_from_artifact(artifact_uri, model[0], out.problems)
        if weights is None:
            return out
    f = len(weights)
    name = training_proof_verifier_name(f)
    if name not in deployment.addresses:
        out.problems.append(f"no training verifier for {f} features in this deployment")
        return out
    verifier = deployment.contract(name)
    events = verifier.events.TrainingProven().get_logs(
        from_block=deployment.block,
        argument_filters={"subnetId": int(subnet_id), "version": int(version)},
    )
    latest: dict[str, Any] = {}
    for event in events:
        latest[Web3.to_checksum_address(event["args"]["holder"])] = event["args"]
    data_registry = deployment.contract("DataRegistry")
    rows: dict[str, int] = {}
    grad = [0.0] * (f + 1)
    sumsq = [0.0] * f
    for holder in (Web3.to_checksum_address(a) for a in contributors):
        args = latest.get(holder)
        if args is None:
            out.problems.append(f"contributor {holder} has no training proof on chain")
            out.holders.append({"address": holder, "proof_verified_on_chain": False})
            continue
        instances = [int(v) for v in args["instances"]]
        sums = TrainingSums.from_instances(instances, f)
        verified = _verifies(verifier, bytes(args["proof"]), instances)
        if not verified:
            out.problems.append(f"{holder}: the proof does not verify")
        c_holder, c_root, _ = data_registry.functions.commitmentOf(int(args["commitmentId"])).call()
        root_ok = Web3.to_checksum_address(c_holder) == holder and int(c_root) == sums.data_root
        if not root_ok:
            out.problems.append(f"{holder}: the proof's data root is not its commitment")
        model_ok = sums.model_commitment == int(commitment)
        if not model_ok:
            out.problems.append(f"{holder}: the proof is for other parameters")
        ok = verified and root_ok and model_ok
        out.holders.append(
            {
                "address": holder,
                "n_rows": sums.n_rows,
                "proof_verified_on_chain": ok,
                "data_commitment_id": int(args["commitmentId"]),
                "data_root": "0x" + sums.data_root.to_bytes(32, "big").hex(),
            }
        )
        rows[holder] = sums.n_rows
        grad = [a + b for a, b in zip(grad, sums.grad, strict=True)]
        sumsq = [a + b for a, b in zip(sumsq, sums.sumsq, strict=True)]
    out.n_rows = sum(rows.values())
    if len(rows) == len(contributors) and all(n > 0 for n in rows.values()):
        expected = dict(
            zip((Web3.to_checksum_address(a) for a in contributors), shares, strict=True)
        )
        out.shares_match = shares_from_rows(rows) == expected
        if not out.shares_match:
            out.problems.append(
                f"the proven row counts {rows} do not give the published shares {expected}"
            )
    out.gradient = grad
    out.max_abs_gradient = max(abs(g) for g in grad)
    out.tolerance = stationarity_tolerance(out.n_rows, sumsq, weights) if out.n_rows else []
    out.stationary = bool(out.tolerance) and all(
        abs(g) <= t for g, t in zip(grad, out.tolerance, strict=True)
    )
    if out.n_rows and not out.stationary:
        out.problems.append(
            "the summed gradient is not within the tolerance: the published coefficients are not "
            "the maximum-likelihood fit of the committed rows"
        )
    out.verified = (
        not out.problems
        and out.shares_match
        and out.stationary
        and all(h.get("proof_verified_on_chain") for h in out.holders)
    )
    return out


def _verifies(verifier: Any, proof: bytes, instances: list[int]) -> bool:
    try:
        return bool(verifier.functions.verifyProof(proof, instances).call({"gas": 1_000_000}))
    except (ContractLogicError, Web3RPCError, ValueError):
        return False


def _weights_from_artifact(uri: str, model_hash: bytes, problems: list[str]) -> list[float] | None:
    from urllib.parse import unquote, urlparse

    from core.bundle import BundleError, verify_bundle

    parsed = urlparse(uri)
    if parsed.scheme != "file":
        problems.append(f"cannot read the model at {uri}: give the coefficients (--weights)")
        return None
    try:
        bundle = verify_bundle(unquote(parsed.path), bytes(model_hash))
    except BundleError as exc:
        problems.append(f"the published model does not verify: {exc}")
        return None
    return [float(c) for c in bundle.coef]
