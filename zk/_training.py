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
:data:`TRAINING_SHAPES` have keys and an on-chain verifier. Feature counts in
:data:`TRAINING_CHUNK_SHAPES` (the 30-feature breast-cancer model, whose one-circuit proof would need
a 2^19 powers of tau) are proven in chunks of R rows linked by a Poseidon chain ending at the committed
root ("chunked proofs" below; ``TrainingChunkVerifier`` on chain). An L2-penalised fit (the breast-cancer
run, C = 1) is checked against its own first-order condition (:func:`penalised_stationarity`).
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
#: Feature count -> rows R per proof of the chunked training circuits (``training_chunk.circom``).
TRAINING_CHUNK_SHAPES: dict[int, int] = {30: 2}
#: log2 of the most chunks one holder's chain may have: the packed running sums of the chunk circuit
#: (``chunkSlotBits`` in ``zk/circuits/training_chunk.circom``) cannot carry between slots below it.
CHUNK_COUNT_BITS = 8
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
        max_abs_gradient: max_j of |residual_j| (raw units; the gradient itself when unpenalised).
        gradient: The pooled proven gradient of the log-likelihood, intercept first.
        tolerance: Per-component tolerance (:func:`penalised_stationarity`).
        stationary: |residual_j| <= tolerance_j for every j.
        problems: One line per failed check.
        penalty_c: The fit's L2 strength C checked against (None: unpenalised).
        residual: First-order condition per component (:func:`penalised_stationarity`).
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
    penalty_c: float | None = None
    residual: list[float] = field(default_factory=list)

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
            "penalty_c": self.penalty_c,
            "residual": self.residual,
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
    l2_c: float | None = None,
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
        l2_c: The fit's inverse L2 strength C (None: unpenalised); with ``weights`` None it is read
            from the bundle's card (``penalty``) instead.

    Feature counts in :data:`TRAINING_CHUNK_SHAPES` are checked from chunked proofs
    (``TrainingChunkVerifier``; :func:`check_chunk_chain` per holder), the others from one proof per
    holder. The stationarity check is :func:`penalised_stationarity` (the plain gradient when
    unpenalised).

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
        read = _weights_from_artifact(artifact_uri, model[0], out.problems)
        if read is None:
            return out
        weights, l2_c = read
    f = len(weights)
    rows: dict[str, int] = {}
    grad = [0.0] * (f + 1)
    sumsq = [0.0] * f
    sumx: list[float] | None = None
    if f in TRAINING_CHUNK_SHAPES:
        sumx = [0.0] * f
        if not _check_chunked_holders(
            deployment, out, int(subnet_id), int(version), contributors, f, int(commitment),
            rows, grad, sumsq, sumx,
        ):  # fmt: skip
            return out
    elif not _check_whole_holders(
        deployment, out, int(subnet_id), int(version), contributors, f, int(commitment),
        rows, grad, sumsq,
    ):  # fmt: skip
        return out
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
    out.penalty_c = l2_c
    if l2_c is not None and sumx is None:
        out.problems.append("an L2-penalised fit needs proven feature sums (a chunked proof)")
    if out.n_rows:
        residual, out.tolerance = penalised_stationarity(
            out.n_rows, grad, sumsq, sumx or [0.0] * f, weights, l2_c if sumx else None
        )
    else:
        residual = list(grad)
    out.residual = residual
    out.max_abs_gradient = max(abs(g) for g in residual)
    out.stationary = bool(out.tolerance) and all(
        abs(g) <= t for g, t in zip(residual, out.tolerance, strict=True)
    )
    if out.n_rows and not out.stationary:
        out.problems.append(
            "the summed gradient is not within the tolerance: the published coefficients are not "
            "the fit (maximum likelihood, L2-penalised when the card says so) of the committed rows"
        )
    out.verified = (
        not out.problems
        and out.shares_match
        and out.stationary
        and all(h.get("proof_verified_on_chain") for h in out.holders)
    )
    return out


def _check_whole_holders(
    deployment: Any,
    out: TrainingVerification,
    subnet_id: int,
    version: int,
    contributors: list[str],
    f: int,
    commitment: int,
    rows: dict[str, int],
    grad: list[float],
    sumsq: list[float],
) -> bool:
    """One proof per holder (``TrainingProofVerifier``); fills ``rows``/``grad``/``sumsq`` in place.

    Returns:
        False when the deployment has no verifier for F (``out.problems`` says so).
    """
    name = training_proof_verifier_name(f)
    if name not in deployment.addresses:
        out.problems.append(f"no training verifier for {f} features in this deployment")
        return False
    verifier = deployment.contract(name)
    events = verifier.events.TrainingProven().get_logs(
        from_block=deployment.block,
        argument_filters={"subnetId": subnet_id, "version": version},
    )
    latest: dict[str, Any] = {}
    for event in events:
        latest[Web3.to_checksum_address(event["args"]["holder"])] = event["args"]
    data_registry = deployment.contract("DataRegistry")
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
        model_ok = sums.model_commitment == commitment
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
        grad[:] = [a + b for a, b in zip(grad, sums.grad, strict=True)]
        sumsq[:] = [a + b for a, b in zip(sumsq, sums.sumsq, strict=True)]
    return True


def _check_chunked_holders(
    deployment: Any,
    out: TrainingVerification,
    subnet_id: int,
    version: int,
    contributors: list[str],
    f: int,
    commitment: int,
    rows: dict[str, int],
    grad: list[float],
    sumsq: list[float],
    sumx: list[float],
) -> bool:
    """Chunked proofs per holder (``TrainingChunkVerifier``); fills the sums in place.

    A holder's chain is its latest run of ``TrainingChunkProven`` events (from its last chunk with
    index 0), re-verified chunk by chunk through the verifier's ``verifyProof`` (``eth_call``) and
    walked from link 0 to the root of the commitment it names and from accumulator 0 to the one its
    latest ``TrainingTotalsOpened`` opens (recomputed off chain; :func:`check_chunk_chain`), whose
    totals are the holder's sums.

    Returns:
        False when the deployment has no chunk verifier for F (``out.problems`` says so).
    """
    name = training_chunk_verifier_name(f)
    if name not in deployment.addresses:
        out.problems.append(f"no training chunk verifier for {f} features in this deployment")
        return False
    verifier = deployment.contract(name)
    events = verifier.events.TrainingChunkProven().get_logs(
        from_block=deployment.block,
        argument_filters={"subnetId": subnet_id, "version": version},
    )
    runs: dict[str, list[Any]] = {}
    for event in events:
        args = event["args"]
        holder = Web3.to_checksum_address(args["holder"])
        if int(args["index"]) == 0:
            runs[holder] = []
        runs.setdefault(holder, []).append(args)
    openings: dict[str, Any] = {}
    for event in verifier.events.TrainingTotalsOpened().get_logs(
        from_block=deployment.block,
        argument_filters={"subnetId": subnet_id, "version": version},
    ):
        openings[Web3.to_checksum_address(event["args"]["holder"])] = event["args"]
    data_registry = deployment.contract("DataRegistry")
    for holder in (Web3.to_checksum_address(a) for a in contributors):
        run = runs.get(holder)
        if not run:
            out.problems.append(f"contributor {holder} has no training proof on chain")
            out.holders.append({"address": holder, "proof_verified_on_chain": False})
            continue
        commitment_ids = {int(a["commitmentId"]) for a in run}
        cid = int(run[0]["commitmentId"])
        c_holder, c_root, _ = data_registry.functions.commitmentOf(cid).call()
        opened = openings.get(holder)
        opening = None
        if opened is not None and int(opened["chunks"]) == len(run):
            opening = ChunkOpening(int(opened["salt"]), tuple(int(v) for v in opened["packed"]))
        found = check_chunk_chain(
            [(bytes(a["proof"]), [int(v) for v in a["instances"]]) for a in run],
            f,
            int(c_root),
            commitment,
            lambda proof, instances: _verifies(verifier, proof, instances),
            opening,
        )
        problems = list(found.problems)
        if Web3.to_checksum_address(c_holder) != holder or len(commitment_ids) != 1:
            problems.append("the chunks do not name one commitment of the holder's")
        out.problems.extend(f"{holder}: {p}" for p in problems)
        out.holders.append(
            {
                "address": holder,
                "n_rows": found.n_rows,
                "chunks": len(run),
                "proof_verified_on_chain": not problems,
                "data_commitment_id": cid,
                "data_root": "0x" + int(c_root).to_bytes(32, "big").hex(),
            }
        )
        rows[holder] = found.n_rows
        grad[:] = [a + b for a, b in zip(grad, found.grad, strict=True)]
        sumsq[:] = [a + b for a, b in zip(sumsq, found.sumsq, strict=True)]
        sumx[:] = [a + b for a, b in zip(sumx, found.sumx, strict=True)]
    return True


def _verifies(verifier: Any, proof: bytes, instances: list[int]) -> bool:
    try:
        return bool(verifier.functions.verifyProof(proof, instances).call({"gas": 1_000_000}))
    except (ContractLogicError, Web3RPCError, ValueError):
        return False


def _weights_from_artifact(
    uri: str, model_hash: bytes, problems: list[str]
) -> tuple[list[float], float | None] | None:
    """The bundle's coefficients and L2 strength C (None when unpenalised), or None (problem noted)."""
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
    penalty = bundle.card.get("penalty") or {"type": "none"}
    strength = float(penalty["C"]) if penalty.get("type") == "l2" else None
    return [float(c) for c in bundle.coef], strength


# ----------------------------------------------------------------------------------- chunked proofs
#
# A circuit over all of a breast-cancer holder's rows (30 features, ~190 rows) needs a 2^19 powers of
# tau; this machine cannot make one. Instead a holder proves its rows R at a time with
# ``zk/circuits/training_chunk.circom`` (7,382 constraints for R = 2, F = 30: the 2^13 file), and
# chains the chunks: link_0 = 0, link_{k+1} = Commit(link_k, salt, packed rows of chunk k), and the
# data root the holder commits to before training is the last link. The salt enters every link, so the
# public links hide the rows. The chunk's sums stay private: each proof adds them to the holder's
# packed running sums, committed as acc_{k+1} = Commit(salt_{k+1}, sums) with a fresh salt per chunk
# (acc_0 = 0, the sums 0), so a proof's public signals are only [linkOut, accOut, modelCommitment,
# linkIn, accIn]. After the last chunk the holder opens acc_K (its salt and packed totals,
# ``TrainingChunkVerifier.openTotals``); the verifier checks every chunk proof, walks both chains, recomputes
# acc_K from the opening off chain (:func:`commit_fields`), unpacks the totals and applies the same
# row-count and stationarity checks (with the L2 penalty's term when the fit was penalised:
# :func:`penalised_stationarity`).


@dataclass(frozen=True)
class ChunkSignals:
    """The public signals of one chunk proof, decoded.

    Attributes:
        link_out: The data chain value after the chunk.
        acc_out: The running-sums commitment after the chunk.
        model_commitment: The parameter commitment the sums were computed at.
        link_in: The data chain value before the chunk (0 for the first).
        acc_in: The running-sums commitment before the chunk (0, the fixed start, for the first).
    """

    link_out: int
    acc_out: int
    model_commitment: int
    link_in: int
    acc_in: int

    @classmethod
    def from_instances(cls, instances: Sequence[int]) -> ChunkSignals:
        """Decode ``[linkOut, accOut, modelCommitment, linkIn, accIn]``.

        Raises:
            ValueError: Wrong length.
        """
        if len(instances) != CHUNK_SIGNALS:
            raise ValueError(f"a chunk proof has {CHUNK_SIGNALS} public signals")
        v = [int(i) for i in instances]
        return cls(v[0], v[1], v[2], v[3], v[4])


#: Public signals of a chunk proof (:class:`ChunkSignals`).
CHUNK_SIGNALS = 5


@dataclass(frozen=True)
class ChunkOpening:
    """The opening of a running-sums commitment: ``acc = Commit(salt, packed)``.

    Attributes:
        salt: The accumulator's salt (fresh per chunk; only the last one is ever published).
        packed: The packed running sums, F + 1 field elements (:func:`pack_chunk_sums`).
    """

    salt: int
    packed: tuple[int, ...]


@dataclass(frozen=True)
class ChunkProof:
    """One chunk's proof.

    Attributes:
        proof: 256 bytes, ``abi.encode(uint256[2] a, uint256[2][2] b, uint256[2] c)``.
        instances: The 5 public signals (:class:`ChunkSignals`).
        n_features: F.
        proving_s: Seconds the worker spent on witness and proof.
        opening: The opening of ``acc_out`` (holder-secret; the last chunk's is published by
            :func:`open_chunk_totals`).
    """

    proof: bytes
    instances: tuple[int, ...]
    n_features: int
    proving_s: float
    opening: ChunkOpening

    @property
    def signals(self) -> ChunkSignals:
        """The decoded public signals."""
        return ChunkSignals.from_instances(self.instances)


def chunk_slot_bits(rows_per_chunk: int) -> tuple[int, int, int, int, int]:
    """Widths of the packed running sums' slots, as ``chunkSlotBits`` in the chunk circuit.

    Returns:
        ``(NB, G0, GW, SW, MW)``: bits of n and g_0 (element 0, n low), and of g_j, S_j, M_j (element
        1 + j, g_j low), each for at most 2^``CHUNK_COUNT_BITS`` chunks.
    """
    rb = max(rows_per_chunk - 1, 0).bit_length()
    kb, xb = CHUNK_COUNT_BITS, TRAIN_X_BITS
    return (rb + 1 + kb, rb + 82 + kb, rb + xb + 81 + kb, rb + 2 * xb - 1 + kb, rb + xb + kb)


def _chunk_offsets(rows_per_chunk: int) -> tuple[int, int, int]:
    """Offsets making one chunk's g_0, g_j and M_j non-negative: R 2^81, R 2^(XB-1) 2^81, R 2^(XB-1)."""
    xoff = rows_per_chunk << (TRAIN_X_BITS - 1)
    return rows_per_chunk << 81, xoff << 81, xoff


def pack_chunk_sums(chunk: EncodedRows, weights: Sequence[float], intercept: float) -> list[int]:
    """One chunk's sums packed as the circuit adds them to the running sums (exact integers).

    Returns:
        F + 1 non-negative integers below 2^253 (``zk/circuits/training_chunk.circom``).
    """
    r = len(chunk.x)
    f = len(weights)
    n, grad, sumsq = fixed_training_sums(chunk, weights, intercept)
    sumx = [sum(row[j] for row in chunk.x) for j in range(f)]
    nb, _, gw, sw, _ = chunk_slot_bits(r)
    g0off, goff, moff = _chunk_offsets(r)
    out = [n + ((grad[0] + g0off) << nb)]
    for j in range(f):
        out.append((grad[j + 1] + goff) + (sumsq[j] << gw) + ((sumx[j] + moff) << (gw + sw)))
    return out


@dataclass(frozen=True)
class ChunkTotals:
    """A holder's totals, unpacked from its opened running sums.

    Attributes:
        n_rows: Real rows.
        grad: Gradient of the log-likelihood (intercept first), shape (F + 1,), raw units.
        sumsq: Sums of squared features, shape (F,).
        sumx: Sums of features, shape (F,).
    """

    n_rows: int
    grad: tuple[float, ...]
    sumsq: tuple[float, ...]
    sumx: tuple[float, ...]


def unpack_running_sums(packed: Sequence[int], n_chunks: int, rows_per_chunk: int) -> ChunkTotals:
    """The totals in the packed running sums after ``n_chunks`` chunks (offsets removed).

    Unique because no slot can carry into the next within 2^``CHUNK_COUNT_BITS`` chunks.

    Raises:
        ValueError: ``n_chunks`` outside [1, 2^CHUNK_COUNT_BITS], or a value that no chain of
            ``n_chunks`` chunks can reach (a slot or element too wide).
    """
    if not 1 <= n_chunks <= 1 << CHUNK_COUNT_BITS:
        raise ValueError(f"{n_chunks} chunks: a chain has 1 to {1 << CHUNK_COUNT_BITS}")
    nb, g0b, gw, sw, mw = chunk_slot_bits(rows_per_chunk)
    g0off, goff, moff = _chunk_offsets(rows_per_chunk)
    v = [int(p) for p in packed]
    if v[0] >> (nb + g0b) or any(p >> (gw + sw + mw) for p in v[1:]):
        raise ValueError("the packed sums are wider than their slots")
    n = v[0] & ((1 << nb) - 1)
    g0 = (v[0] >> nb) - n_chunks * g0off
    grad = [g0 / 2.0**RESIDUAL_SCALE_BITS]
    sumsq, sumx = [], []
    for p in v[1:]:
        g = (p & ((1 << gw) - 1)) - n_chunks * goff
        s = (p >> gw) & ((1 << sw) - 1)
        m = (p >> (gw + sw)) - n_chunks * moff
        grad.append(g / 2.0 ** (RESIDUAL_SCALE_BITS + TRAIN_X_SCALE_BITS))
        sumsq.append(s / 2.0 ** (2 * TRAIN_X_SCALE_BITS))
        sumx.append(m / 2.0**TRAIN_X_SCALE_BITS)
    return ChunkTotals(n, tuple(grad), tuple(sumsq), tuple(sumx))


def commit_fields(values: Sequence[int], cache_dir: Any = None) -> int:
    """``Commit(values)`` of ``zk/circuits/logit.circom`` (the circuits' Poseidon chain), off chain.

    Computed by the witness-only ``InputsHash(len(values))`` circuit (which is ``Commit``) in a one-off
    Node worker; used to check a running-sums opening against the chain's last accumulator.

    Raises:
        ValueError: A value is not a field element.
        zk.SetupError: The hash circuit could not be compiled.
        zk.ProofError: The worker failed.
    """
    from zk._prover import ProverPool
    from zk._setup import ensure_inputs_hash_wasm

    if not all(0 <= int(v) < FIELD_MODULUS for v in values):
        raise ValueError("Commit takes BN254 scalar field elements")
    wasm = ensure_inputs_hash_wasm(len(values), cache_dir)

    async def run() -> int:
        async with ProverPool(workers=1, max_pending=1) as pool:
            answer = await pool._call(
                {
                    "op": "outputs",
                    "wasm": str(wasm),
                    "zkey": str(wasm),
                    "n_outputs": 1,
                    "input": {"x": [str(int(v)) for v in values]},
                }
            )
        return int(answer["outputs"][0])

    return asyncio.run(run())


def training_chunk_verifier_name(n_features: int) -> str:
    """Key of the F-feature ``TrainingChunkVerifier`` in a deployment's addresses."""
    return f"TrainingChunkVerifier{n_features}"


def chunk_capacity(n_rows: int, n_features: int) -> int:
    """Rows a holder's ``n_rows`` are padded to for the F-feature chunk circuit (a multiple of R).

    Raises:
        ValueError: No chunk circuit for ``n_features``, or ``n_rows`` < 1.
    """
    if n_features not in TRAINING_CHUNK_SHAPES:
        raise ValueError(f"no training chunk circuit for {n_features} features")
    if n_rows < 1:
        raise ValueError("no rows")
    r = TRAINING_CHUNK_SHAPES[n_features]
    return -(-n_rows // r) * r


def split_chunks(rows: EncodedRows) -> list[EncodedRows]:
    """The chunks of a holder's padded rows, in chain order (R rows each).

    Raises:
        ValueError: No chunk circuit for the feature count, or the rows are not a multiple of R.
    """
    f = len(rows.x[0])
    if f not in TRAINING_CHUNK_SHAPES:
        raise ValueError(f"no training chunk circuit for {f} features")
    r = TRAINING_CHUNK_SHAPES[f]
    if len(rows.x) % r:
        raise ValueError(f"{len(rows.x)} rows are not a multiple of the chunk's {r}")
    return [
        EncodedRows(rows.x[i : i + r], rows.y[i : i + r], rows.present[i : i + r])
        for i in range(0, len(rows.x), r)
    ]


def chunk_circuit_input(
    chunk: EncodedRows,
    salt: int,
    link_in: int,
    weights: Sequence[float],
    intercept: float,
    acc_in: int = 0,
    acc_opening: ChunkOpening | None = None,
    salt_out: int = 0,
) -> dict[str, Any]:
    """The chunk circuit's input signals (decimal strings of field elements).

    Args:
        chunk: The chunk's R rows.
        salt: The holder's data salt (enters the link).
        link_in: The previous link (0 for the first chunk).
        weights: Coefficients, shape (F,), raw units.
        intercept: Intercept.
        acc_in: The previous running-sums commitment (0, the fixed start, for the first chunk).
        acc_opening: Its opening (None with ``acc_in`` 0: salt 0, sums 0).
        salt_out: The fresh salt of the commitment this chunk outputs.

    Raises:
        FixedPointRangeError: A parameter is outside the fixed-point range.
        ValueError: Mismatched feature counts, or a salt, link or sum that is not a field element.
    """
    f = len(weights)
    opening = acc_opening or ChunkOpening(0, (0,) * (f + 1))
    values = (link_in, acc_in, salt_out, opening.salt, *opening.packed)
    if not all(0 <= v < FIELD_MODULUS for v in values) or len(opening.packed) != f + 1:
        raise ValueError("links, salts and running sums must be BN254 scalar field elements")
    signals = circuit_input(chunk, salt, weights, intercept)
    signals["linkIn"] = str(link_in)
    signals["accIn"] = str(acc_in)
    signals["saltIn"] = str(opening.salt)
    signals["saltOut"] = str(salt_out)
    signals["pin"] = [str(v) for v in opening.packed]
    return signals


def _run_chunks(
    rows: EncodedRows,
    salt: int,
    weights: Sequence[float],
    intercept: float,
    keys: Any,
    op: str,
) -> list[tuple[dict[str, Any], ChunkOpening]]:
    """Witness (``op = "outputs"``) or prove (``"prove"``) every chunk in order, in one worker.

    Each chunk gets a fresh accumulator salt; returns each answer with the opening of its ``accOut``.
    """
    from zk._prover import ProverPool

    f = len(rows.x[0])
    chunks = split_chunks(rows)

    async def run() -> list[tuple[dict[str, Any], ChunkOpening]]:
        answers = []
        link, acc = 0, 0
        opening: ChunkOpening | None = None
        async with ProverPool(workers=1, max_pending=1, timeout_s=600.0) as pool:
            for chunk in chunks:
                salt_out = new_salt()
                request: dict[str, Any] = {
                    "op": op,
                    "wasm": str(keys.wasm),
                    "zkey": str(keys.zkey),
                    "input": chunk_circuit_input(
                        chunk, salt, link, weights, intercept, acc, opening, salt_out
                    ),
                }
                if op == "outputs":
                    request["n_outputs"] = 3
                answer = await pool._call(request)
                values = answer["outputs"] if op == "outputs" else answer["public"]
                link, acc = int(values[0]), int(values[1])
                before = opening.packed if opening else (0,) * (f + 1)
                added = pack_chunk_sums(chunk, weights, intercept)
                opening = ChunkOpening(
                    salt_out, tuple(a + b for a, b in zip(before, added, strict=True))
                )
                answers.append((answer, opening))
        return answers

    return asyncio.run(run())


def chunked_data_root(rows: EncodedRows, salt: int, keys: Any = None) -> int:
    """The root a holder commits to for chunked proofs: the last link of its chain (witnesses only).

    Args:
        rows: The holder's encoded rows, padded to :func:`chunk_capacity`.
        salt: The holder's secret salt.
        keys: ``zk.TrainingChunkCircuitKeys``; made on first use when None.

    Raises:
        zk.ProofError: The worker failed.
        zk.SetupError: The keys could not be made.
    """
    from zk._setup import ensure_training_chunk_keys

    f = len(rows.x[0])
    keys = keys or ensure_training_chunk_keys(f)
    answers = _run_chunks(rows, salt, [0.0] * f, 0.0, keys, "outputs")
    return int(answers[-1][0]["outputs"][0])


def prove_training_chunks(
    rows: EncodedRows, salt: int, weights: Sequence[float], intercept: float, keys: Any = None
) -> list[ChunkProof]:
    """Prove every chunk of a holder's committed rows at the published parameters, in chain order.

    Args:
        rows: The rows committed to (same encoding, padded to :func:`chunk_capacity`).
        salt: The commitment's salt.
        weights: The published coefficients, shape (F,), raw units.
        intercept: The published intercept.
        keys: ``zk.TrainingChunkCircuitKeys``; made on first use when None.

    Returns:
        One proof per chunk; the last one's ``link_out`` is the data root and its ``opening`` opens the
        holder's totals (:func:`open_chunk_totals`).

    Raises:
        zk.ProofError: The worker failed (for example a value outside the circuit's ranges).
        zk.SetupError: The keys could not be made.
        ValueError: More chunks than 2^CHUNK_COUNT_BITS.
    """
    from zk._prover import PROOF_BYTES
    from zk._setup import ensure_training_chunk_keys

    f = len(weights)
    if len(rows.x) > TRAINING_CHUNK_SHAPES.get(f, 1) << CHUNK_COUNT_BITS:
        raise ValueError(f"{len(rows.x)} rows need more than {1 << CHUNK_COUNT_BITS} chunks")
    keys = keys or ensure_training_chunk_keys(f)
    out = []
    for answer, opening in _run_chunks(rows, salt, weights, intercept, keys, "prove"):
        proof = bytes.fromhex(str(answer["proof"])[2:])
        if len(proof) != PROOF_BYTES:
            raise TrainingProofError(f"the prover returned {len(proof)} bytes")
        out.append(
            ChunkProof(
                proof,
                tuple(int(v) for v in answer["public"]),
                f,
                float(answer["proving_s"]),
                opening,
            )
        )
    return out


def submit_chunk_proofs(
    transactor: Any,
    deployment: Any,
    subnet_id: int,
    version: int,
    commitment_id: int,
    proofs: Sequence[ChunkProof],
) -> list[dict[str, Any]]:
    """Submit a holder's chunk proofs, in order, to the F-feature ``TrainingChunkVerifier``.

    Does not open the totals: :func:`open_chunk_totals` after the last chunk.

    Returns:
        One transaction receipt per chunk.

    Raises:
        KeyError: The deployment has no chunk verifier for F features.
        contracts.ContractError: The verifier refused a chunk (bad proof, other parameters, out of
            order, an accumulator that does not continue the chain, not a contributor, someone else's
            or a late commitment).
    """
    receipts = []
    for proof in proofs:
        verifier = deployment.contract(training_chunk_verifier_name(proof.n_features))
        receipts.append(
            transactor.transact(
                verifier.functions.submitChunk(
                    int(subnet_id),
                    int(version),
                    int(commitment_id),
                    proof.proof,
                    list(proof.instances),
                ),
                gas=1_000_000,
            )
        )
    return receipts


def open_chunk_totals(
    transactor: Any,
    deployment: Any,
    subnet_id: int,
    version: int,
    n_features: int,
    opening: ChunkOpening,
) -> dict[str, Any]:
    """Publish the opening of a holder's last accumulator (``TrainingChunkVerifier.openTotals``).

    Args:
        transactor: Signs as the holder (``contracts.Transactor``).
        deployment: The deployment with ``TrainingChunkVerifier<F>``.
        subnet_id: The subnet.
        version: The model version.
        n_features: F.
        opening: The last chunk proof's ``opening`` (its salt and packed totals).

    Returns:
        The transaction receipt.

    Raises:
        KeyError: The deployment has no chunk verifier for F features.
        contracts.ContractError: The chain is not complete, or the opening has the wrong length.
    """
    verifier = deployment.contract(training_chunk_verifier_name(n_features))
    return transactor.transact(
        verifier.functions.openTotals(
            int(subnet_id), int(version), int(opening.salt), [int(v) for v in opening.packed]
        ),
        gas=500_000,
    )


def submit_and_open_chunks(
    transactor: Any,
    deployment: Any,
    subnet_id: int,
    version: int,
    commitment_id: int,
    proofs: Sequence[ChunkProof],
) -> list[dict[str, Any]]:
    """:func:`submit_chunk_proofs`, then :func:`open_chunk_totals` with the last proof's opening.

    Returns:
        One receipt per chunk, then the opening's.

    Raises:
        ValueError: No proofs.
        KeyError, contracts.ContractError: As the two calls.
    """
    if not proofs:
        raise ValueError("no chunk proofs")
    receipts = submit_chunk_proofs(
        transactor, deployment, subnet_id, version, commitment_id, proofs
    )
    last = proofs[-1]
    receipts.append(
        open_chunk_totals(transactor, deployment, subnet_id, version, last.n_features, last.opening)
    )
    return receipts


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`check_chunk_chain` found for one holder.

    Attributes:
        ok: Every chunk verifies, both chains run from 0 to the root and the opened accumulator, all
            at the model commitment, and the opening recomputes to the last accumulator.
        n_rows: The opened rows (0 when the opening fails).
        grad: The opened gradient (intercept first), shape (F + 1,).
        sumsq: The opened sums of squares, shape (F,).
        sumx: The opened sums of features, shape (F,).
        problems: One line per failed check.
    """

    ok: bool
    n_rows: int
    grad: list[float]
    sumsq: list[float]
    sumx: list[float]
    problems: list[str]


def check_chunk_chain(
    chunks: Sequence[tuple[bytes, Sequence[int]]],
    n_features: int,
    root: int,
    model_commitment: int,
    verifies: Any,
    opening: ChunkOpening | None,
    commit: Any = None,
) -> ChainCheck:
    """Check one holder's chunks, in the order given, against its committed root and opened totals.

    Args:
        chunks: ``(proof, instances)`` per chunk, in chain order.
        n_features: F.
        root: The holder's committed data root.
        model_commitment: The model version's commitment.
        verifies: ``verifies(proof, instances) -> bool``, the Groth16 check (an ``eth_call`` to the
            chunk verifier).
        opening: The published opening of the last accumulator (None: not opened).
        commit: ``commit(values) -> int``, the circuits' ``Commit`` (:func:`commit_fields` when None).

    Returns:
        The findings and, when the opening recomputes to the last accumulator, the opened totals.
    """
    f = n_features
    commit = commit or commit_fields
    problems: list[str] = []
    link, acc = 0, 0
    if not chunks:
        problems.append("no chunk proofs")
    for k, (proof, instances) in enumerate(chunks):
        try:
            sig = ChunkSignals.from_instances(instances)
        except ValueError as exc:
            problems.append(f"chunk {k}: {exc}")
            continue
        if not verifies(proof, list(instances)):
            problems.append(f"chunk {k}: the proof does not verify")
        if sig.link_in != link:
            problems.append(f"chunk {k}: does not continue the chain (dropped or reordered chunk)")
        if sig.acc_in != acc:
            problems.append(f"chunk {k}: its running sums do not continue the previous chunk's")
        if sig.model_commitment != model_commitment:
            problems.append(f"chunk {k}: the proof is for other parameters")
        link, acc = sig.link_out, sig.acc_out
    if chunks and link != root:
        problems.append("the chain does not end at the committed data root")
    totals = None
    if opening is None:
        problems.append("the running sums were not opened")
    elif chunks:
        rows_per_chunk = TRAINING_CHUNK_SHAPES.get(f, 1)
        if len(opening.packed) != f + 1:
            problems.append(f"the opening has {len(opening.packed)} sums, not {f + 1}")
        elif commit([opening.salt, *opening.packed]) != acc:
            problems.append("the opened totals do not match the last running-sums commitment")
        else:
            try:
                totals = unpack_running_sums(opening.packed, len(chunks), rows_per_chunk)
            except ValueError as exc:
                problems.append(f"the opened totals: {exc}")
    if totals is None:
        return ChainCheck(False, 0, [0.0] * (f + 1), [0.0] * f, [0.0] * f, problems)
    return ChainCheck(
        not problems,
        totals.n_rows,
        list(totals.grad),
        list(totals.sumsq),
        list(totals.sumx),
        problems,
    )


def penalised_stationarity(
    n_rows: int,
    grad: Sequence[float],
    sumsq: Sequence[float],
    sumx: Sequence[float],
    weights: Sequence[float],
    l2_c: float | None,
) -> tuple[list[float], list[float]]:
    """The first-order condition of the fit, residual and tolerance per component (intercept first).

    The trainer maximises ``loglik - ||w_std||^2 / (2 C)`` over standardised features
    ``z_j = (x_j - m_j) / s_j`` (population moments of the pooled rows, intercept not penalised;
    ``trainer/newton.py``). At its optimum ``g_0 = 0`` and ``sum_i r_i z_ij = w_std_j / C``; in raw
    units (``g_j = sum_i r_i x_ij``, ``w_std_j = s_j w_j``):

        g_j - m_j g_0 - s_j^2 w_j / C = 0,

    with ``m_j = sumx_j / n`` and ``s_j^2 = sumsq_j / n - m_j^2`` from the proven sums. Tolerance: the
    proven gradient's own (:func:`stationarity_tolerance`, for ``g_j`` and, times ``|m_j|``, for
    ``g_0``), plus the penalty term moved by rounding the features to 2^-17 (``|w_j| n / C`` times
    ``2^-16 sqrt(S_j / n) + 2^-17 (2 |m_j| + 2^-16)``). Without a penalty (``l2_c`` None) this is
    ``g`` against :func:`stationarity_tolerance`.

    Args:
        n_rows: Pooled rows n > 0.
        grad: Pooled proven gradient, shape (F + 1,).
        sumsq: Pooled sums of squares, shape (F,).
        sumx: Pooled sums of features, shape (F,).
        weights: The model's coefficients in raw units, shape (F,).
        l2_c: The fit's inverse L2 strength C, or None.

    Returns:
        ``(residual, tolerance)``, each shape (F + 1,).
    """
    base = stationarity_tolerance(n_rows, sumsq, weights)
    if l2_c is None:
        return list(grad), base
    residual, tolerance = [grad[0]], [base[0]]
    for j, w in enumerate(weights):
        m = sumx[j] / n_rows
        var = max(sumsq[j] / n_rows - m * m, 0.0)
        residual.append(grad[j + 1] - m * grad[0] - var * w / l2_c)
        moved = 2.0**-16 * math.sqrt(sumsq[j] / n_rows) + 2.0**-17 * (2 * abs(m) + 2.0**-16)
        tolerance.append(base[j + 1] + abs(m) * base[0] + abs(w) * n_rows / l2_c * moved)
    return residual, tolerance
