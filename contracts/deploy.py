"""Deploying the whole contract set in one call, and the deployment file that records it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from contracts._artifacts import forbidden_opcodes, load_artifact, read_artifact
from contracts.chain import is_local_chain
from contracts.tx import Transactor

#: StakingVault token kinds (the Solidity enum ``StakingVault.TokenKind``).
TOKEN_KIND = {"stETH": 1, "wstETH": 2, "rETH": 3}
#: Which stand-in plays which token on a local chain.
LOCAL_TOKENS = {"stETH": "MockStETH", "wstETH": "MockWstETH", "rETH": "MockRETH"}
#: Initial rates of the local stand-ins, wei of ETH per 1e18 tokens (close to mainnet in 2026).
#: Groth16 verifiers of the 3- and 30-feature logit circuits, development keys: local chains only.
DEV_ZK_VERIFIERS = ("LogitGroth16Verifier3", "LogitGroth16Verifier30", "BatchGroth16Verifier3")
#: Deployment keys whose contract has another name (one TrainingProofVerifier per feature count).
ARTIFACT_OF = {
    "TrainingProofVerifier3": "TrainingProofVerifier",
    "TrainingChunkVerifier30": "TrainingChunkVerifier",
}
#: Groth16 verifiers of the training circuit (feature count -> contract), development keys: local only.
DEV_TRAINING_VERIFIERS = {3: "TrainingGroth16Verifier3"}
#: Groth16 verifiers of the training chunk circuit (feature count -> contract), development keys only.
DEV_TRAINING_CHUNK_VERIFIERS = {30: "TrainingChunkGroth16Verifier30"}
LOCAL_RATES_WEI = {"MockWstETH": 1_210_000_000_000_000_000, "MockRETH": 1_140_000_000_000_000_000}
#: Default staleness allowance of a rate feed, seconds: the wstETH/stETH feed on Scroll updates about every
#: 24 h (observed heartbeat, /work/shared/FACTS.md), plus 2 h of slack.
DEFAULT_FEED_MAX_AGE_S = 26 * 3600
#: Default accepted answers of a rate feed, as multiples of one token in ETH: [1, 2]. wstETH/stETH and rETH/ETH
#: have only grown from 1.0 since launch (about 1.21 and 1.14 in 2026); a value outside is a broken feed.
DEFAULT_FEED_BOUNDS = (1, 2)


#: Groth16 verifiers a ceremony key directory may hold: the development deployment's set.
CEREMONY_ZK_VERIFIERS = frozenset(
    (*DEV_ZK_VERIFIERS, *DEV_TRAINING_VERIFIERS.values(), *DEV_TRAINING_CHUNK_VERIFIERS.values())
)

#: The manifest ``python -m zk ceremony`` writes into a key directory (zk/_ceremony.py).
ZK_KEYS_MANIFEST = "zk_setup.json"


def read_zk_keys(directory: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest and the compiled verifiers of a key directory made by ``python -m zk ceremony``.

    Every verifier's runtime code is scanned for opcodes Scroll lacks
    (:data:`contracts._artifacts.FORBIDDEN_OPCODES`). A manifest lists the Groth16 verifiers of
    :data:`CEREMONY_ZK_VERIFIERS` its ceremony file was large enough for (the batch and training
    circuits need 2^13).

    Returns:
        ``(manifest, {contract name: Artifact})``.

    Raises:
        ValueError: No manifest, not a ceremony's, an artifact missing or unreadable, a verifier
            not in :data:`CEREMONY_ZK_VERIFIERS`, or one using a forbidden opcode.
    """
    path = Path(directory) / ZK_KEYS_MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(
            f"{path}: no zk key manifest ({exc.strerror}); run python -m zk ceremony"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not a zk key manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("kind") != "ceremony":
        raise ValueError(f"{path} does not describe ceremony keys")
    verifiers = manifest.get("verifiers")
    if not isinstance(verifiers, dict) or not verifiers:
        raise ValueError(f"{path} lists no verifiers")
    artifacts: dict[str, Any] = {}
    for name, entry in verifiers.items():
        if name not in CEREMONY_ZK_VERIFIERS:
            raise ValueError(f"{path}: unexpected verifier {name!r}")
        try:
            artifact = read_artifact(Path(directory) / str(entry["artifact"]))
        except (OSError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: the artifact of {name} cannot be read: {exc}") from exc
        if artifact.name != name:
            raise ValueError(f"{path}: the artifact of {name} holds {artifact.name}")
        used = forbidden_opcodes(artifact.deployed_bytecode)
        if used:
            raise ValueError(f"{name} uses opcodes Scroll does not run: {', '.join(used)}")
        artifacts[name] = artifact
    return manifest, artifacts


def _deploy_training_verifiers(
    sender: Transactor, addresses: dict[str, str], groth16: dict[str, Any]
) -> None:
    """Deploy the training Groth16 verifiers in ``groth16``, each followed by its proof-of-training front.

    Whole (``TrainingProofVerifier<F>``) and chunked (``TrainingChunkVerifier<F>``, 30 features):
    each registry-aware front checks a holder's proofs with its circuit's Groth16 verifier
    (zk/_training.py). The development and the ceremony deployments both go through here, in the
    same order.

    Args:
        sender: The deployer.
        addresses: The deployment so far (needs ``DataRegistry`` and ``SubnetRegistry``); the
            verifiers and fronts are added to it.
        groth16: Verifier contract name -> what ``sender.deploy`` takes (the committed contract's
            name, or a ceremony key directory's artifact); a training verifier missing from it (a
            ceremony file too small for its circuit) gets no front.
    """
    for verifiers, front in (
        (DEV_TRAINING_VERIFIERS, "TrainingProofVerifier"),
        (DEV_TRAINING_CHUNK_VERIFIERS, "TrainingChunkVerifier"),
    ):
        for n_features, name in verifiers.items():
            if name not in groth16:
                continue
            addresses[name] = sender.deploy(groth16[name]).address
            addresses[f"{front}{n_features}"] = sender.deploy(
                front,
                addresses[name],
                n_features,
                addresses["DataRegistry"],
                addresses["SubnetRegistry"],
            ).address


#: ``RateFeedConfig.feed`` value that deploys the ``WstETHRateFeed`` stand-in.
NEW_FEED = "new"


@dataclass(frozen=True)
class RateFeedConfig:
    """How the StakingVault values a token through a Chainlink-style feed (``configureRateFeed``).

    Attributes:
        feed: Address of an ``AggregatorV3Interface`` answering ETH (or stETH) per token, or
            :data:`NEW_FEED` to deploy the ``WstETHRateFeed`` stand-in (owned by the deployer, who
            must post a fresh answer within ``max_age_s``; Scroll Sepolia has no such feed).
        max_age_s: Oldest round accepted, seconds (1 .. 7 days); older rounds value the stake at 0.
        min_answer: Smallest accepted answer in the feed's units (its ``decimals()``); ``None``: 1 token.
        max_answer: Largest accepted answer in the feed's units; ``None``: 2 tokens.
        initial_answer: First answer of a stand-in deployed for :data:`NEW_FEED` (18 decimals).
    """

    feed: str
    max_age_s: int = DEFAULT_FEED_MAX_AGE_S
    min_answer: int | None = None
    max_answer: int | None = None
    initial_answer: int = LOCAL_RATES_WEI["MockWstETH"]

    def bounds(self, decimals: int) -> tuple[int, int]:
        """The (min, max) answer, defaults scaled to a feed with ``decimals`` decimals."""
        low, high = DEFAULT_FEED_BOUNDS
        return (
            self.min_answer if self.min_answer is not None else low * 10**decimals,
            self.max_answer if self.max_answer is not None else high * 10**decimals,
        )


@dataclass
class Deployment:
    """Where the contracts of one network live.

    Attributes:
        chain_id: EIP-155 chain id.
        addresses: Contract name -> checksummed address (the four core contracts, plus the local
            token stand-ins on a local chain).
        block: Block number of the first deployment transaction (where log scans start).
        deployer: Address that deployed and owns the contracts.
        operator: The InferenceLedger operator (the signer's address).
        tokens: Token symbol (``stETH``, ``wstETH``, ``rETH``) -> address accepted by the StakingVault.
        rate_feeds: Token symbol -> address of the feed that values it (only tokens valued by a feed).
        zk_setup: Which powers of tau the zk verifiers rest on: ``{"kind": "development"}`` (public
            beacon, local chains only), ``{"kind": "ceremony", "ptau": name, "power": k, "sha256": hex}``
            (checked by ``core.ptau.check_ceremony_ptau``; with ``contributions``, ``beacon``,
            ``keys_dir``, ``verifiers`` and ``skipped`` when the phase-2 keys of
            ``python -m zk ceremony`` were deployed), or ``{"kind": "none"}``.
        w3: Client used for :meth:`contract`; not serialised.
    """

    chain_id: int
    addresses: dict[str, str]
    block: int
    deployer: str
    operator: str
    tokens: dict[str, str] = field(default_factory=dict)
    rate_feeds: dict[str, str] = field(default_factory=dict)
    zk_setup: dict[str, Any] = field(default_factory=dict)
    w3: Web3 | None = field(default=None, repr=False, compare=False)

    def contract(self, name: str, w3: Web3 | None = None) -> Contract:
        """The deployed contract ``name`` bound to its address.

        Raises:
            KeyError: The deployment has no contract of that name.
            ValueError: No web3 client was given or attached.
        """
        client = w3 or self.w3
        if client is None:
            raise ValueError("no web3 client: pass w3 or load the deployment with one")
        return client.eth.contract(
            address=Web3.to_checksum_address(self.addresses[name]),
            abi=load_artifact(ARTIFACT_OF.get(name, name)).abi,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to deployment files."""
        return {
            "chain_id": self.chain_id,
            "block": self.block,
            "deployer": self.deployer,
            "operator": self.operator,
            "contracts": self.addresses,
            "tokens": self.tokens,
            "rate_feeds": self.rate_feeds,
            "zk_setup": self.zk_setup,
        }

    def write(self, path: Path) -> None:
        """Write the deployment file (JSON) to ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path, w3: Web3 | None = None) -> Deployment:
        """Read a deployment file written by :meth:`write`.

        Raises:
            OSError: The file cannot be read.
            ValueError: It is not a deployment file.
        """
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                chain_id=int(data["chain_id"]),
                addresses=dict(data["contracts"]),
                block=int(data["block"]),
                deployer=data["deployer"],
                operator=data["operator"],
                tokens=dict(data.get("tokens", {})),
                rate_feeds=dict(data.get("rate_feeds", {})),
                zk_setup=dict(data.get("zk_setup", {})),
                w3=w3,
            )
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a 2PM deployment file: {exc}") from exc


def deploy_all(
    w3: Web3,
    deployer_private_key: str,
    *,
    operator: str,
    fee_recipient: str | None = None,
    protocol_fee_bps: int = 500,
    staking_cooldown_s: int = 7 * 24 * 3600,
    credit_withdrawal_delay_s: int = 24 * 3600,
    local_tokens: bool = True,
    tokens: dict[str, str] | None = None,
    rate_feeds: dict[str, RateFeedConfig] | None = None,
    dev_zk_verifiers: bool | None = None,
    zk_keys: Path | None = None,
) -> Deployment:
    """Deploy NodeRegistry, StakingVault, SubnetRegistry and InferenceLedger, and list the staking tokens.

    Args:
        w3: Client of the target chain.
        deployer_private_key: Key that pays for and owns the contracts.
        operator: Address allowed to record batches (the isolated signer's address).
        fee_recipient: Receives the protocol fee; the deployer when ``None``.
        protocol_fee_bps: Protocol fee in basis points (at most 2 000).
        staking_cooldown_s: StakingVault withdrawal cooldown, seconds (at most 30 days).
        credit_withdrawal_delay_s: InferenceLedger credit-withdrawal delay, seconds (at most 30 days).
        local_tokens: Also deploy the stETH / wstETH / rETH stand-ins and list them (local chains only),
            and a ``WstETHRateFeed`` through which the vault values ``MockWstETH``, as on Scroll (unless
            ``rate_feeds`` names another feed for wstETH).
        tokens: Existing token addresses to list instead (symbol -> address), e.g. on Scroll.
        rate_feeds: Symbol -> the feed that values that token (wstETH and rETH only). On Scroll, bridged
            wstETH has no ``stEthPerToken`` and must have one; rETH without one is L1-only.
        dev_zk_verifiers: Deploy the Groth16 verifiers of the development setup (zk/_setup.py: keys
            from a public beacon, anyone can forge proofs). None: exactly when ``local_tokens`` and the
            chain is local (:func:`contracts.chain.is_local_chain`). True on any other chain is refused.
        zk_keys: A key directory made by ``python -m zk ceremony`` (phase 2 on a ceremony powers of
            tau): its Groth16 verifiers (logit, and batch and training where the ceremony file was
            large enough) are deployed (on any chain) instead of the development ones, the training
            ones with their fronts as in the development deployment, and its manifest becomes
            ``zk_setup``. Excludes ``dev_zk_verifiers``.

    Returns:
        The deployment, with ``w3`` attached.

    Raises:
        ValueError: Both or neither of ``local_tokens`` and ``tokens`` describe the tokens, a
            rate feed names a token that is not listed, development zk keys were asked for on a
            chain that is not local or together with ``zk_keys``, or ``zk_keys`` is not a valid key
            directory (:func:`read_zk_keys`).
        contracts.ContractRevert: A constructor or configuration call reverted.
    """
    if local_tokens == bool(tokens):
        raise ValueError(
            "give either local_tokens=True or the addresses of existing tokens, not both"
        )
    local_chain = is_local_chain(w3)
    ceremony: tuple[dict[str, Any], dict[str, Any]] | None = None
    if zk_keys is not None:
        if dev_zk_verifiers:
            raise ValueError("give either the development zk setup or a ceremony key directory")
        ceremony = read_zk_keys(zk_keys)
        dev_zk_verifiers = False
    if dev_zk_verifiers is None:
        dev_zk_verifiers = local_tokens and local_chain
    elif dev_zk_verifiers and not local_chain:
        raise ValueError(
            f"refusing the development zk setup on chain id {w3.eth.chain_id}: its keys come from a "
            "public beacon (anyone can forge proofs), so they only go to a local anvil chain"
        )
    sender = Transactor(w3, deployer_private_key)
    deployer = sender.address
    block = w3.eth.block_number + 1
    node_registry = sender.deploy("NodeRegistry")
    vault = sender.deploy("StakingVault", deployer, staking_cooldown_s)
    subnets = sender.deploy("SubnetRegistry")
    ledger = sender.deploy(
        "InferenceLedger",
        deployer,
        subnets.address,
        Web3.to_checksum_address(operator),
        Web3.to_checksum_address(fee_recipient or deployer),
        protocol_fee_bps,
        credit_withdrawal_delay_s,
    )
    addresses: dict[str, str] = {
        "NodeRegistry": node_registry.address,
        "StakingVault": vault.address,
        "SubnetRegistry": subnets.address,
        "InferenceLedger": ledger.address,
    }
    addresses["DataRegistry"] = sender.deploy("DataRegistry", node_registry.address).address
    if dev_zk_verifiers:
        # Groth16 verifiers of the logit circuit (zk/). Their keys come from a public development beacon,
        # so they only ever go to a local chain; see zk/_setup.py.
        for name in DEV_ZK_VERIFIERS:
            addresses[name] = sender.deploy(name).address
        # Proof of training (zk/_training.py), whole and chunked, with their fronts.
        training = (*DEV_TRAINING_VERIFIERS.values(), *DEV_TRAINING_CHUNK_VERIFIERS.values())
        _deploy_training_verifiers(sender, addresses, {name: name for name in training})
    zk_setup: dict[str, Any] = {"kind": "development" if dev_zk_verifiers else "none"}
    if ceremony is not None:
        manifest, artifacts = ceremony
        # The development deployment's order: logit and batch verifiers, then training ones.
        for name in DEV_ZK_VERIFIERS:
            if name in artifacts:
                addresses[name] = sender.deploy(artifacts[name]).address
        _deploy_training_verifiers(sender, addresses, artifacts)
        zk_setup = {
            key: manifest[key]
            for key in ("kind", "ptau", "power", "sha256", "contributions", "beacon", "skipped")
            if key in manifest
        }
        zk_setup["keys_dir"] = str(Path(zk_keys).resolve()) if zk_keys is not None else ""
        zk_setup["verifiers"] = sorted(artifacts)
    listed: dict[str, str] = {}
    feeds = dict(rate_feeds or {})
    if local_tokens:
        for symbol, name in LOCAL_TOKENS.items():
            args: tuple[Any, ...] = (
                (deployer,) if name == "MockStETH" else (deployer, LOCAL_RATES_WEI[name])
            )
            token = sender.deploy(name, *args)
            addresses[name] = token.address
            listed[symbol] = token.address
        if "wstETH" not in feeds:
            feed = sender.deploy("WstETHRateFeed", deployer, LOCAL_RATES_WEI["MockWstETH"])
            addresses["WstETHRateFeed"] = feed.address
            feeds["wstETH"] = RateFeedConfig(feed.address)
    else:
        assert tokens is not None
        listed = {symbol: Web3.to_checksum_address(a) for symbol, a in tokens.items()}
    for symbol, address in listed.items():
        if symbol not in TOKEN_KIND:
            raise ValueError(
                f"unknown staking token {symbol!r}; expected one of {sorted(TOKEN_KIND)}"
            )
        sender.transact(vault.functions.configureToken(address, TOKEN_KIND[symbol], True))
    for symbol, config in feeds.items():
        if symbol not in listed:
            raise ValueError(f"a rate feed for {symbol!r}, which is not a listed staking token")
        if config.feed == NEW_FEED:
            stand_in = sender.deploy("WstETHRateFeed", deployer, config.initial_answer)
            addresses["WstETHRateFeed"] = stand_in.address
            feeds[symbol] = config = RateFeedConfig(
                stand_in.address, config.max_age_s, config.min_answer, config.max_answer
            )
        feed_address = Web3.to_checksum_address(config.feed)
        feed_contract = w3.eth.contract(
            address=feed_address, abi=load_artifact("WstETHRateFeed").abi
        )
        try:
            decimals = int(feed_contract.functions.decimals().call())
            feed_contract.functions.latestRoundData().call()
        except Exception as exc:  # no code, or not the interface: web3 raises several types
            raise ValueError(
                f"the {symbol} rate feed {feed_address} does not answer decimals() and "
                "latestRoundData(): not an AggregatorV3Interface feed"
            ) from exc
        low, high = config.bounds(decimals)
        sender.transact(
            vault.functions.configureRateFeed(
                listed[symbol], feed_address, config.max_age_s, low, high
            )
        )
    return Deployment(
        chain_id=w3.eth.chain_id,
        addresses=addresses,
        block=block,
        deployer=deployer,
        operator=Web3.to_checksum_address(operator),
        tokens=listed,
        rate_feeds={symbol: Web3.to_checksum_address(c.feed) for symbol, c in feeds.items()},
        zk_setup=zk_setup,
        w3=w3,
    )
