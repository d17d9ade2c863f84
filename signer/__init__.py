"""The isolated signer: the only holder of the operator key.

The service (``twopm signer serve``) lives in the private modules; what other packages use is
exported here: the caller library (:class:`SignerClient`, and :class:`RemoteSigner`, the signing backend
of :class:`contracts.Transactor`), the policy
helpers and :func:`init_state` that ``twopm up`` needs, the settings, and the error tree (the
transaction errors are :mod:`core.transactions`', re-exported).
"""

from core.transactions import TransactionFailed, TransactionReverted, WouldRevert
from signer._auth import sign_request
from signer._deployment import policy_for_deployment
from signer._errors import (
    REASONS,
    ClientError,
    ConfigError,
    SignerError,
    SignerRefused,
    SignerUnavailable,
)
from signer._policy import L1FeeCap, Limits, Policy, TypedDataDomain, load_policy, parse_policy
from signer._settings import SignerSettings
from signer._setup import SignerState, init_state
from signer.client import RemoteSigner, SignedTransaction, SignedTypedData, SignerClient

__all__ = [
    "REASONS",
    "ClientError",
    "ConfigError",
    "L1FeeCap",
    "Limits",
    "Policy",
    "RemoteSigner",
    "SignedTransaction",
    "SignedTypedData",
    "SignerClient",
    "SignerError",
    "SignerRefused",
    "SignerSettings",
    "SignerState",
    "SignerUnavailable",
    "TransactionFailed",
    "TransactionReverted",
    "TypedDataDomain",
    "WouldRevert",
    "init_state",
    "load_policy",
    "parse_policy",
    "policy_for_deployment",
    "sign_request",
]
