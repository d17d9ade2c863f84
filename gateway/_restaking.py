"""Restaked stake: what a user has restaked through EigenLayer on Ethereum L1, in wei of ETH.

EigenLayer lives on Ethereum mainnet only, so the gateway reads it through an **L1 JSON-RPC
endpoint the operator configures** (``restaking_rpc_url``: the operator's own node, or a provider
it trusts). Trust model: the gateway believes that endpoint's ``latest`` state, as it believes
its Scroll endpoint for the vault; a lying or stale endpoint can grant or deny access, never move
funds, and an unreachable one counts restaked stake as 0 (access falls back to the vault stake;
it fails closed). Reads share the stake cache (``stake_cache_ttl_s``, 5 s), so a slashing, an
undelegation or a queued withdrawal closes access within that many seconds of the L1 block.

Value (Layr-Labs/eigenlayer-contracts v1.x, slashing release):
``DelegationManager.getWithdrawableShares(user, strategies)`` -- deposit shares scaled by the
operator's max magnitude, so a slashing lowers it at once and a queued withdrawal removes it (deposit
shares are never counted) -- then ``IStrategy.sharesToUnderlyingView`` per strategy. The underlying
(stETH for the stETH strategy) counts 1:1 as ETH, as the vault counts stETH. Only stakers delegated
to ``restaking_operator`` count (any operator when it is unset).
"""

from __future__ import annotations

import logging
from typing import Any

from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3

from gateway._chain import load_abi

__all__ = ["RestakingReader"]

_log = logging.getLogger("gateway.restaking")
_ZERO = "0x" + "00" * 20


class RestakingReader:
    """Reads a user's restaked value from EigenLayer's DelegationManager on L1.

    Args:
        w3: Async web3 client of Ethereum L1.
        delegation_manager: DelegationManager address.
        strategies: Strategy addresses whose shares count.
        operator: The only operator whose delegators count, or None for any.

    Raises:
        ValueError: An address is invalid or no strategy is given.
    """

    def __init__(
        self,
        w3: AsyncWeb3,
        delegation_manager: str,
        strategies: list[str],
        operator: str | None = None,
    ) -> None:
        if not strategies:
            raise ValueError("restaking needs at least one strategy address")
        self.w3 = w3
        self.manager = w3.eth.contract(
            address=to_checksum_address(delegation_manager),
            abi=load_abi("MockDelegationManager"),
        )
        self.strategies = [to_checksum_address(s) for s in strategies]
        self._strategy = [
            w3.eth.contract(address=s, abi=load_abi("MockStrategy")) for s in self.strategies
        ]
        self.operator = to_checksum_address(operator) if operator else None

    @classmethod
    def from_settings(cls, settings: Any) -> RestakingReader | None:
        """Build from ``restaking_*`` settings; None when restaking is not configured.

        Raises:
            ValueError: Some but not all of the settings are given, or one is invalid.
        """
        url, manager = settings.restaking_rpc_url, settings.restaking_delegation_manager
        strategies = [s.strip() for s in settings.restaking_strategies.split(",") if s.strip()]
        if not (url or manager or strategies):
            return None
        if not (url and manager and strategies):
            raise ValueError(
                "restaking needs restaking_rpc_url, restaking_delegation_manager and "
                "restaking_strategies together"
            )
        w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 10}))
        return cls(w3, manager, strategies, settings.restaking_operator or None)

    async def restaked_wei(self, user: str) -> int:
        """Wei of ETH ``user`` has restaked and delegated (to the configured operator); 0 on error.

        Args:
            user: Address (any case).

        Returns:
            Sum over strategies of ``sharesToUnderlyingView(withdrawable shares)``; 0 when
            undelegated, delegated elsewhere, or the L1 endpoint fails (fail closed).
        """
        staker = to_checksum_address(user)
        try:
            operator = str(await self.manager.functions.delegatedTo(staker).call())
            if operator.lower() == _ZERO or (
                self.operator is not None and operator.lower() != self.operator.lower()
            ):
                return 0
            withdrawable, _deposit = await self.manager.functions.getWithdrawableShares(
                staker, self.strategies
            ).call()
            total = 0
            for strategy, shares in zip(self._strategy, withdrawable, strict=True):
                if int(shares):
                    total += int(
                        await strategy.functions.sharesToUnderlyingView(int(shares)).call()
                    )
            return total
        except Exception as exc:  # transport, JSON-RPC or a non-EigenLayer contract: fail closed
            _log.warning("restaked stake of %s unreadable, counted as 0: %s", staker, exc)
            return 0
