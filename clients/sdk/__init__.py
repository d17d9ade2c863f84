"""The 2PM Python SDK: a typed client of the gateway and the contracts, for app developers and wallets.

Typical use::

    from clients.sdk import ChainClient, GatewayClient, Wallet

    wallet = Wallet.from_keystore("key.json", password_file="password.txt")
    chain = ChainClient.from_stack_file("state/stack.json", wallet)
    chain.stake("rETH", 2 * 10**18)
    chain.deposit(10**16)
    with GatewayClient("https://gw.example.org") as gw:
        gw.sign_in(wallet, expected_domain="gw.example.org")
        gw.submit_spending_authorization(chain.sign_spending_authorization(10**16))
        result = gw.predict_encrypted(1, rows)          # CKKS: the gateway sees nothing
        record = gw.wait_for_receipt(result.receipt_ids[0])
        assert gw.verify_receipt(record, chain)

:class:`AsyncGatewayClient` has the same methods for asyncio. Errors are
:class:`TwoPMError` subclasses; see :mod:`clients.sdk._exceptions` for the tree.
"""

from clients.sdk._chain import ChainClient, TxResult
from clients.sdk._encrypted import choose_layout
from clients.sdk._exceptions import (
    ApiError,
    AuthError,
    BadRequest,
    ChainError,
    ForbiddenError,
    InsufficientStake,
    InvalidInput,
    NotFound,
    NothingToWithdraw,
    Overloaded,
    PaymentRequired,
    RateLimited,
    ServerError,
    SignInRejected,
    TooEarly,
    TransactionReverted,
    TransportError,
    TwoPMError,
    WalletError,
)
from clients.sdk._gateway import AsyncGatewayClient, GatewayClient
from clients.sdk._types import (
    ApiKey,
    BatchInfo,
    CreditState,
    Me,
    NewApiKey,
    Prediction,
    ProvenBatch,
    ProvenPrediction,
    ReceiptCheck,
    ReceiptRecord,
    SignedSpendingAuthorization,
    StakeWithdrawal,
    Subnet,
)
from clients.sdk._wallet import Wallet

__all__ = [
    "ApiError",
    "ApiKey",
    "AsyncGatewayClient",
    "AuthError",
    "BadRequest",
    "BatchInfo",
    "ChainClient",
    "ChainError",
    "CreditState",
    "ForbiddenError",
    "GatewayClient",
    "InsufficientStake",
    "InvalidInput",
    "Me",
    "NewApiKey",
    "NotFound",
    "NothingToWithdraw",
    "Overloaded",
    "PaymentRequired",
    "Prediction",
    "ProvenBatch",
    "ProvenPrediction",
    "RateLimited",
    "ReceiptCheck",
    "ReceiptRecord",
    "ServerError",
    "SignInRejected",
    "SignedSpendingAuthorization",
    "StakeWithdrawal",
    "Subnet",
    "TooEarly",
    "TransactionReverted",
    "TransportError",
    "TwoPMError",
    "TxResult",
    "Wallet",
    "WalletError",
    "choose_layout",
]
