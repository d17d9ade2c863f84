"""The operator's dashboard: ``GET /v1/operator/overview`` (JSON) behind the operator's sign-in.

The page itself is static (``gateway/web/operator/``, served at ``/app/operator/`` by the web
router); everything it shows comes from the JSON route, which answers only

- a SIWE session whose address is the deployment's operator (``InferenceLedger.operator()``), or
- the admin key: header ``X-Admin-Key`` equal to the contents of ``TWOPM_GATEWAY_ADMIN_KEY_FILE``
  (a file of mode 0600 or 0400, read on every request so it can be rotated; compared in constant
  time with :func:`hmac.compare_digest`).

Anonymous callers get 401, a signed-in address that is not the operator's (or an API key) 403.

What it reads: registered nodes (``NodeRegistry.nodes``), subnets and their model versions
(``SubnetRegistry``), the gateway's receipt queue (queued receipts, open batches), the ledger's
``BatchRecorded`` logs (recorded batches with their transaction hash and gas used), and revenue
(``InferenceLedger.revenueOf`` per version, ``PayoutAccrued`` logs summed per account beside
``claimableOf``). Every list is bounded (:data:`MAX_ITEMS` nodes, subnets, versions per subnet,
batches, accounts); logs are read from block 0, which suits a local chain and a young deployment.

Training runs come from the model cards of the published versions whose bundles lie in the
gateway's model store (``TWOPM_GATEWAY_MODEL_STORE``; each bundle verified against its on-chain
hash, once per (subnet, version, bundle hash): :class:`TrainingRuns` keeps the verified records,
bounded, and verifies again when the chain names another hash): rounds with log-likelihood and gradient, the nodes that contributed with their row counts,
the nodes that dropped out, and the minimum. The signer's newest audit entries come from the
signer's ``GET /v1/audit`` with the gateway's caller credentials (that read is audited too); when
the signer is not configured or does not answer, ``signer_audit.error`` says so and the rest of
the overview still answers.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

import anyio
import msgspec
from eth_utils import to_checksum_address
from litestar import Request, get
from litestar.params import HeaderParameter

from core.protocol import SESSION_COOKIE
from core.secrets import PrivateFileError, read_private_file
from gateway._chain import load_abi
from gateway._errors import Forbidden, NotAuthenticated, ServiceUnavailable
from gateway._openapi import answer, problem_spec, problems
from gateway._services import Services, services_of

__all__ = [
    "ADMIN_KEY_HEADER",
    "MAX_ITEMS",
    "TRAINING_RUN_CACHE_ENTRIES",
    "OverviewAnswer",
    "TrainingRuns",
    "operator_route_handler",
]

ADMIN_KEY_HEADER = "X-Admin-Key"
"""Header carrying the admin key."""
MAX_ITEMS = 100
"""Most nodes, subnets, versions per subnet, batches and accounts one overview lists
(``NodeRegistry.MAX_PAGE_SIZE`` is 100 too)."""
TRAINING_RUN_CACHE_ENTRIES = 1024
"""Most verified training records kept (one per subnet version, a few KB each)."""


class OverviewAnswer(msgspec.Struct):
    """``GET /v1/operator/overview`` (wei as decimal strings, times as Unix seconds)."""

    operator: str
    signed_in_as: str
    nodes: list[dict[str, Any]]
    subnets: list[dict[str, Any]]
    receipts: dict[str, int]
    batches: list[dict[str, Any]]
    open_batches: list[dict[str, Any]]
    revenue: list[dict[str, Any]]
    training_runs: list[dict[str, Any]]
    signer_audit: dict[str, Any]


async def _operator_address(services: Services) -> str:
    chain = services.chain
    if chain is None:
        raise ServiceUnavailable("this gateway has no chain connection configured")
    try:
        return str(to_checksum_address(await chain.ledger.functions.operator().call()))
    except Exception as exc:
        raise ServiceUnavailable("the chain is unreachable") from exc


async def _who(request: Request[Any, Any, Any], admin_key: str | None) -> tuple[str, str]:
    """(who the caller is, the operator's address), or the 401/403/503 refusal."""
    services = services_of(request)
    if admin_key is not None:
        path = services.settings.admin_key_file
        if path is None:
            raise NotAuthenticated("this gateway has no admin key configured; sign in instead")
        try:
            expected = read_private_file(path, "admin key file").strip()
        except PrivateFileError as exc:
            raise ServiceUnavailable(f"the admin key is unusable: {exc}") from exc
        if not expected or not hmac.compare_digest(admin_key.encode(), expected.encode()):
            raise NotAuthenticated("wrong admin key")
        return "admin key", await _operator_address(services)
    if request.headers.get("authorization"):
        raise Forbidden("the operator dashboard takes a signed-in session or the admin key")
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise NotAuthenticated("sign in with Ethereum as the operator, or send the admin key")
    address = await services.auth.session_address(cookie)
    if address is None:
        raise NotAuthenticated("the session has ended; sign in again")
    operator = await _operator_address(services)
    if to_checksum_address(address) != operator:
        raise Forbidden(f"{to_checksum_address(address)} is not this network's operator")
    return operator, operator


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _training_run(store: Path, subnet_id: int, version: dict[str, Any]) -> dict[str, Any] | None:
    """The training record of one published version, from its verified card.

    Returns:
        The record, or None when the bundle is absent, fails verification, or its card's
        training section is malformed (a published card is verified by hash only).
    """
    return _verified_training_run(store, subnet_id, version)[1]


def _verified_training_run(
    store: Path, subnet_id: int, version: dict[str, Any]
) -> tuple[bool, dict[str, Any] | None]:
    """One version's bundle verified against its on-chain hash, and its training record.

    Returns:
        ``(verified, record)``: whether the bundle was there and matched the hash, and the
        record (None when not verified or when the verified card's training part is malformed).
    """
    from core.bundle import BundleError, verify_bundle

    digest = str(version["model_hash"]).removeprefix("0x")
    path = store / digest
    if not path.is_dir():
        return False, None
    try:
        card = verify_bundle(path, digest).card
    except (BundleError, OSError, ValueError):
        return False, None
    try:
        return True, _run_of_card(card, subnet_id, version)
    except (AttributeError, KeyError, TypeError, ValueError):
        return (
            True,
            None,
        )  # the card's hash is on chain, not its shape: a malformed record is left out


class TrainingRuns:
    """The overview's training records, each bundle verified once per (subnet, version, hash).

    Verifying a bundle rereads and hashes every file of it; the dashboard asks for every
    published version on every page load. A record is kept under (subnet, version) with the
    on-chain hash it was verified against: the next load with the same hash uses it, a
    different hash (the chain reorganised or was reverted under that version) drops it and
    verifies the bundle the chain now names. Only verified outcomes are kept (a malformed card
    is kept as "no record"); an absent or failing bundle is tried again on the next load, since
    it may be stored or repaired meanwhile. At most ``max_entries`` records (least recently
    used dropped). Lookups run on the event loop, verification in a worker thread.

    Args:
        max_entries: Most records kept, >= 1.
    """

    def __init__(self, max_entries: int = TRAINING_RUN_CACHE_ENTRIES) -> None:
        self._max = max(1, max_entries)
        self._runs: OrderedDict[tuple[int, int], tuple[str, dict[str, Any] | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    async def run(
        self, store: Path, subnet_id: int, version: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The record of one published version (see :func:`_training_run`).

        Args:
            store: The gateway's model store.
            subnet_id: Subnet id.
            version: ``version`` and on-chain ``model_hash`` (0x-hex) of the version.

        Returns:
            The record, or None (absent, failing or malformed bundle).
        """
        key = (subnet_id, int(version["version"]))
        digest = str(version["model_hash"]).lower()
        kept = self._runs.get(key)
        if kept is not None and kept[0] == digest:
            self._runs.move_to_end(key)
            return kept[1]
        verified, run = await anyio.to_thread.run_sync(
            _verified_training_run, store, subnet_id, version
        )
        if verified:
            self._runs[key] = (digest, run)
            self._runs.move_to_end(key)
            while len(self._runs) > self._max:
                self._runs.popitem(last=False)
        else:
            self._runs.pop(key, None)
        return run


def _run_of_card(card: dict[str, Any], subnet_id: int, version: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's record of one card's training section (raises on a malformed one)."""
    training = card.get("training") or {}
    history = training.get("history") or []
    return {
        "subnet_id": subnet_id,
        "version": version["version"],
        "model_hash": version["model_hash"],
        "job_name": str(card.get("job_name", "")),
        "secure_aggregation": str(training.get("secure_aggregation", "")),
        "rounds": int(training.get("rounds", len(history))),
        "converged": bool(training.get("converged", False)),
        "n_rows": int(card.get("n_rows", 0)),
        "min_nodes": None if training.get("min_nodes") is None else int(training["min_nodes"]),
        "dropped_nodes": [int(n) for n in list(training.get("dropped_nodes") or [])[:MAX_ITEMS]],
        "nodes": [
            {"operator_address": str(n.get("operator_address", "")), "n_rows": int(n["n_rows"])}
            for n in (card.get("nodes") or [])[:MAX_ITEMS]
        ],
        "history": [
            {
                "round": int(h.get("iteration", i + 1)),
                "loglik": float(h.get("loglik", 0.0)),
                "grad_max_abs": float(h.get("grad_max_abs", 0.0)),
            }
            for i, h in enumerate(history[:MAX_ITEMS])
        ],
    }


def _signer_audit(services: Services) -> dict[str, Any]:
    """The signer's newest audit entries, or why there are none (runs in a worker thread)."""
    s = services.settings
    if not (s.signer_url and s.signer_secret):
        return {"entries": [], "error": "this gateway has no signer configured"}
    from signer import SignerClient

    try:
        with SignerClient(
            s.signer_url, s.signer_caller_id, s.signer_secret, timeout_s=5.0, attempts=1
        ) as client:
            answer = client.audit()
    except Exception as exc:  # unreachable or refused: the dashboard shows why
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"entries": [], "error": f"the signer did not answer: {first}"}
    return {
        "head_seq": answer.get("head_seq"),
        "entries": list(answer.get("entries") or [])[:MAX_ITEMS],
        "error": None,
    }


async def _overview(
    services: Services, who: str, operator: str, runs: TrainingRuns
) -> dict[str, Any]:
    chain = services.chain
    assert chain is not None
    w3 = chain.w3
    nodes: list[dict[str, Any]] = []
    if "NodeRegistry" in chain.addresses:
        registry = w3.eth.contract(
            address=chain.addresses["NodeRegistry"], abi=load_abi("NodeRegistry")
        )
        page, _total = await registry.functions.nodes(0, MAX_ITEMS).call()
        nodes = [
            {"address": n[0], "name": n[1], "url": n[2], "registered_at": int(n[3])} for n in page
        ]
    subnets: list[dict[str, Any]] = []
    accounts: set[str] = set()
    count = int(await chain.registry.functions.subnetCount().call())
    for subnet_id in range(1, min(count, MAX_ITEMS) + 1):
        s = await chain.registry.functions.subnetOf(subnet_id).call()
        accounts.add(str(s[0]))
        versions = []
        current = int(s[2])
        for version in range(max(1, current - MAX_ITEMS + 1), current + 1):
            m = await chain.registry.functions.modelOf(subnet_id, version).call()
            unsettled, settled = await chain.ledger.functions.revenueOf(subnet_id, version).call()
            accounts.update(str(a) for a in m[5])
            versions.append(
                {
                    "version": version,
                    "model_hash": _hex(m[0]),
                    "training_run_id": _hex(m[2]),
                    "published_at": int(m[3]),
                    "contributors": [str(a) for a in m[5]],
                    "shares_bps": [int(b) for b in m[6]],
                    "unsettled_wei": str(int(unsettled)),
                    "settled_wei": str(int(settled)),
                }
            )
        subnets.append(
            {
                "subnet_id": subnet_id,
                "name": s[6],
                "owner": str(s[0]),
                "owner_share_bps": int(s[1]),
                "price_per_request_wei": str(int(s[4])),
                "current_version": current,
                "versions": versions,
            }
        )
    training_runs: list[dict[str, Any]] = []
    store = services.settings.model_store
    if store is not None:
        for subnet in subnets:
            for version in subnet["versions"]:
                run = await runs.run(Path(store), subnet["subnet_id"], version)
                if run is not None:
                    training_runs.append(run)
    signer_audit = await anyio.to_thread.run_sync(_signer_audit, services)
    recorded_logs = await chain.ledger.events.BatchRecorded.get_logs(from_block=0)
    batches = []
    recorded_requests = 0
    for log in recorded_logs:
        recorded_requests += int(log["args"]["requestCount"])
    for log in list(recorded_logs)[-MAX_ITEMS:][::-1]:
        tx_hash = _hex(log["transactionHash"])
        receipt = await w3.eth.get_transaction_receipt(log["transactionHash"])
        block = await w3.eth.get_block(log["blockNumber"])
        batches.append(
            {
                "batch_id": int(log["args"]["batchId"]),
                "subnet_id": int(log["args"]["subnetId"]),
                "version": int(log["args"]["version"]),
                "requests": int(log["args"]["requestCount"]),
                "total_wei": str(int(log["args"]["totalWei"])),
                "tx_hash": tx_hash,
                "block_number": int(log["blockNumber"]),
                "gas_used": int(receipt["gasUsed"]),
                "recorded_at": int(block["timestamp"]),
            }
        )
    open_batches = [
        {
            "key": b.key,
            "subnet_id": b.subnet_id,
            "size": len(b.receipt_ids),
            "status": b.status,
            "tx_hash": b.tx_hash,
        }
        for b in (await services.queue.open_batches())[:MAX_ITEMS]
    ]
    paid: dict[str, int] = {}
    for log in await chain.ledger.events.PayoutAccrued.get_logs(from_block=0):
        account = str(log["args"]["account"])
        paid[account] = paid.get(account, 0) + int(log["args"]["amountWei"])
    accounts.update(paid)
    revenue = []
    for account in sorted(accounts)[:MAX_ITEMS]:
        claimable = int(await chain.ledger.functions.claimableOf(account).call())
        revenue.append(
            {
                "account": account,
                "settled_wei": str(paid.get(account, 0)),
                "claimable_wei": str(claimable),
            }
        )
    return {
        "operator": operator,
        "signed_in_as": who,
        "nodes": nodes,
        "subnets": subnets,
        "receipts": {
            "queued": int(await services.queue.depth()),
            "batched": sum(b["size"] for b in open_batches),
            "recorded": recorded_requests,
        },
        "batches": batches,
        "open_batches": open_batches,
        "revenue": revenue,
        "training_runs": training_runs[-MAX_ITEMS:],
        "signer_audit": signer_audit,
    }


def operator_route_handler() -> Any:
    """A fresh ``GET /v1/operator/overview`` handler (one per app).

    Returns:
        The Litestar route handler.
    """
    runs = TrainingRuns()

    @get(
        "/v1/operator/overview",
        tags=["operator"],
        responses={
            200: answer(OverviewAnswer, "Nodes, subnets and versions, receipts, batches, revenue"),
            **problems(401),
            403: problem_spec("Signed in as an address that is not the operator, or an API key"),
            503: problem_spec("No chain configured or reachable, or the admin key file unusable"),
        },
    )
    async def operator_overview(
        request: Request[Any, Any, Any],
        admin_key: Annotated[
            str | None,
            HeaderParameter(
                name=ADMIN_KEY_HEADER,
                required=False,
                description="The admin key (contents of TWOPM_GATEWAY_ADMIN_KEY_FILE)",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """What the operator's dashboard shows, for the operator only.

        Returns ``{operator, signed_in_as, nodes, subnets, receipts: {queued, batched, recorded},
        batches, open_batches, revenue, training_runs, signer_audit: {entries, error}}`` (see the
        module doc for the sources).
        """
        who, operator = await _who(request, admin_key)
        try:
            return await _overview(services_of(request), who, operator, runs)
        except ServiceUnavailable:
            raise
        except Exception as exc:
            raise ServiceUnavailable("the chain is unreachable") from exc

    return operator_overview
