"""Deploying the whole contract set in one call, and the deployment file that records it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from contracts._artifacts import load_artifact
from contracts.tx import Transactor

#: StakingVault token kinds (the Solidity enum ``StakingVault.TokenKind``).
TOKEN_KIND = {"stETH": 1, "wstETH": 2, "rETH": 3}
#: Which stand-in plays which token on a local chain.
LOCAL_TOKENS = {"stETH": "MockStETH", "wstETH": "MockWstETH", "rETH": "MockRETH"}
#: Initial rates of the local stand-ins, wei of ETH per 1e18 tokens (close to mainnet in 2026).
LOCAL_RATES_WEI = {"MockWstETH": 1_210_000_000_000_000_000, "MockRETH": 1_140_000_000_000_000_000}


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
        w3: Client used for :meth:`contract`; not serialised.
    """

    chain_id: int
    addresses: dict[str, str]
    block: int
    deployer: str
    operator: str
    tokens: dict[str, str] = field(default_factory=dict)
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
            address=Web3.to_checksum_address(self.addresses[name]), abi=load_artifact(name).abi
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
        local_tokens: Also deploy the stETH / wstETH / rETH stand-ins and list them (local chains only).
        tokens: Existing token addresses to list instead (symbol -> address), e.g. on Scroll.

    Returns:
        The deployment, with ``w3`` attached.

    Raises:
        ValueError: Both or neither of ``local_tokens`` and ``tokens`` describe the tokens.
        contracts.ContractRevert: A constructor or configuration call reverted.
    """
    if local_tokens == bool(tokens):
        raise ValueError(
            "give either local_tokens=True or the addresses of existing tokens, not both"
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
    listed: dict[str, str] = {}
    if local_tokens:
        for symbol, name in LOCAL_TOKENS.items():
            args: tuple[Any, ...] = (
                (deployer,) if name == "MockStETH" else (deployer, LOCAL_RATES_WEI[name])
            )
            token = sender.deploy(name, *args)
            addresses[name] = token.address
            listed[symbol] = token.address
    else:
        assert tokens is not None
        listed = {symbol: Web3.to_checksum_address(a) for symbol, a in tokens.items()}
    for symbol, address in listed.items():
        if symbol not in TOKEN_KIND:
            raise ValueError(
                f"unknown staking token {symbol!r}; expected one of {sorted(TOKEN_KIND)}"
            )
        sender.transact(vault.functions.configureToken(address, TOKEN_KIND[symbol], True))
    return Deployment(
        chain_id=w3.eth.chain_id,
        addresses=addresses,
        block=block,
        deployer=deployer,
        operator=Web3.to_checksum_address(operator),
        tokens=listed,
        w3=w3,
    )
