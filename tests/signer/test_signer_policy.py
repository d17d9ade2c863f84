"""Policy parsing and checks, settings, keystore files, and the package's public surface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak, to_checksum_address

import signer
from contracts import load_artifact
from contracts.operator import OPERATOR_FUNCTIONS
from contracts.scroll import L1FeeParams, l1_fee_wei
from signer import ConfigError, Limits, parse_policy, policy_for_deployment
from signer._errors import MalformedRequest, PolicyViolation
from signer._keystore import check_secret_file, read_password
from signer._policy import AllowedFunction, TxRequest
from signer._settings import SignerSettings

LEDGER = "0x" + "11" * 20
REGISTRY = "0x" + "22" * 20
POLICY = f"""
chain_id = 534351

[limits]
max_value_per_tx_wei = "1000"
max_value_per_window_wei = 5000
value_window_s = 600
max_gas_per_tx = 500000
max_fee_per_gas_wei = "50000000000"
max_tx_per_hour = 10

[[contracts]]
name = "InferenceLedger"
address = "{LEDGER}"
functions = ["settle(uint256,uint64)", "recordBatch(uint256, bytes32, address[], uint256[], uint32)"]

[[typed_data]]
name = "2PM InferenceLedger"
version = "1"
chain_id = 534351
verifying_contract = "{LEDGER}"
primary_types = ["OperatorVoucher"]
"""


def settle_data(*args: int) -> bytes:
    return keccak(text="settle(uint256,uint64)")[:4] + encode(["uint256", "uint64"], list(args))


def tx(**overrides: Any) -> TxRequest:
    fields: dict[str, Any] = {
        "chain_id": 534351,
        "to": to_checksum_address(LEDGER),
        "data": settle_data(1, 1),
        "value_wei": 0,
        "gas": 100_000,
        "max_fee_per_gas_wei": 10**9,
        "max_priority_fee_per_gas_wei": 10**8,
    }
    fields.update(overrides)
    return TxRequest(**fields)


def test_the_public_surface_changes_only_on_purpose() -> None:
    assert sorted(signer.__all__) == sorted([
        "REASONS", "ClientError", "ConfigError", "L1FeeCap", "Limits", "Policy", "RemoteSigner",
        "SignedTransaction", "SignedTypedData", "SignerClient", "SignerError", "SignerRefused",
        "SignerSettings", "SignerState", "SignerUnavailable", "TransactionFailed", "TransactionReverted",
        "TypedDataDomain", "WouldRevert", "init_state", "load_policy", "parse_policy", "policy_for_deployment",
        "sign_request",
    ])  # fmt: skip


def test_function_signatures_become_the_solidity_selectors() -> None:
    fn = AllowedFunction.parse("recordBatch(uint256, bytes32, address[], uint256[], uint32)")
    assert fn.signature == "recordBatch(uint256,bytes32,address[],uint256[],uint32)"
    assert fn.selector == keccak(text=fn.signature)[:4]
    assert AllowedFunction.parse("f(uint,(address,int)[])").signature == (
        "f(uint256,(address,int256)[])"
    )


@pytest.mark.parametrize(
    "text", ["settle", "settle(uint256", "1f(uint256)", "f(uint7)", "f(,uint256)", "f((uint256)"]
)
def test_a_malformed_function_signature_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        AllowedFunction.parse(text)


def test_the_digest_ignores_layout_and_comments_but_not_content() -> None:
    base = parse_policy(POLICY).digest
    assert parse_policy("# a comment\n" + POLICY.replace("\n\n", "\n\n\n")).digest == base
    assert parse_policy(POLICY.replace("max_tx_per_hour = 10", "max_tx_per_hour = 11")).digest != (
        base
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("chain_id = 534351", "chain_id = 0"), "chain_id"),
        (("max_tx_per_hour = 10", "max_tx_per_hour = -1"), "negative"),
        (("max_tx_per_hour = 10", "max_tx_per_hours = 10"), "unknown keys"),
        ((f'address = "{LEDGER}"', 'address = "0x1234"'), "not an address"),
        (('functions = ["settle', 'functions = ["1settle'), "not a function signature"),
        (("chain_id = 534351\nverifying", "chain_id = 1\nverifying"), "not the policy's"),
        (("[limits]", "[limits"), "not valid TOML"),
    ],
)
def test_an_invalid_policy_is_refused_with_a_reason(edit: tuple[str, str], message: str) -> None:
    text = POLICY.replace(*edit)
    assert text != POLICY
    with pytest.raises(ConfigError, match=message):
        parse_policy(text)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"chain_id": 1}, "wrong_chain"),
        ({"to": "0x" + "33" * 20}, "unknown_contract"),
        ({"data": keccak(text="claim()")[:4]}, "unknown_function"),
        ({"value_wei": 1001}, "value_over_cap"),
        ({"gas": 500_001}, "gas_over_cap"),
        ({"max_fee_per_gas_wei": 50 * 10**9 + 1}, "fee_over_cap"),
        ({"max_priority_fee_per_gas_wei": 2 * 10**9}, "fee_over_cap"),
    ],
)
def test_check_transaction_names_the_rule_a_call_breaks(
    overrides: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PolicyViolation) as exc:
        parse_policy(POLICY).check_transaction(tx(**overrides))
    assert exc.value.reason == reason
    assert exc.value.status == 403


def test_check_transaction_refuses_calldata_that_does_not_decode() -> None:
    with pytest.raises(MalformedRequest) as exc:
        parse_policy(POLICY).check_transaction(tx(data=settle_data(1, 1)[:-5]))
    assert exc.value.reason == "malformed_calldata"


def test_check_transaction_accepts_an_allowed_call_at_the_caps() -> None:
    fn = parse_policy(POLICY).check_transaction(
        tx(value_wei=1000, gas=500_000, max_fee_per_gas_wei=50 * 10**9)
    )
    assert fn.signature == "settle(uint256,uint64)"


def test_typed_data_domains_must_match_every_field() -> None:
    policy = parse_policy(POLICY)
    domain = {"name": "2PM InferenceLedger", "version": "1", "chainId": 534351,
              "verifyingContract": LEDGER}  # fmt: skip
    assert policy.check_typed_data(domain, "OperatorVoucher").name == "2PM InferenceLedger"
    for key, value in [("version", "2"), ("verifyingContract", REGISTRY), ("salt", "0x00")]:
        with pytest.raises(PolicyViolation) as exc:
            policy.check_typed_data({**domain, key: value}, "OperatorVoucher")
        assert exc.value.reason == "typed_data_domain_not_allowed"
    with pytest.raises(PolicyViolation) as exc:
        policy.check_typed_data({**domain, "chainId": 1}, "OperatorVoucher")
    assert exc.value.reason == "wrong_chain"


def test_the_deployment_policy_allows_exactly_the_operator_functions_of_the_abis() -> None:
    addresses = {
        "InferenceLedger": LEDGER, "SubnetRegistry": REGISTRY, "NodeRegistry": "0x" + "44" * 20,
        "StakingVault": "0x" + "55" * 20, "MockStETH": "0x" + "66" * 20,
    }  # fmt: skip
    policy = parse_policy(
        policy_for_deployment(addresses, chain_id=534351, limits=Limits(max_tx_per_hour=7))
    )
    assert policy.limits.max_tx_per_hour == 7
    assert set(policy.contracts) == {
        to_checksum_address(addresses[n])
        for n in ("InferenceLedger", "SubnetRegistry", "NodeRegistry")
    }
    for contract in policy.contracts.values():
        abi = load_artifact(contract.name).abi
        selectors = {
            keccak(text=f"{i['name']}({','.join(p['type'] for p in i['inputs'])})")[:4]: i["name"]
            for i in abi
            if i["type"] == "function"
        }
        names = {selectors[s] for s in contract.functions}
        assert names == set(OPERATOR_FUNCTIONS[contract.name])


def test_the_deployment_policy_refuses_an_abi_without_an_operator_function() -> None:
    with pytest.raises(ConfigError, match="recordBatch"):
        policy_for_deployment(
            {"InferenceLedger": LEDGER}, chain_id=534351, abis={"InferenceLedger": [{"x": 1}]}
        )


def test_settings_come_from_twopm_signer_variables_once() -> None:
    settings = SignerSettings.from_env(
        {"TWOPM_SIGNER_STATE_DIR": "/srv/signer", "TWOPM_SIGNER_PORT": "9000", "HOME": "/root"}
    )
    assert settings.port == 9000
    assert settings.db_path == Path("/srv/signer/signer.db")
    assert settings.with_overrides(port=None, host="::1").port == 9000
    with pytest.raises(ConfigError, match="TWOPM_SIGNER_PORT"):
        SignerSettings.from_env({"TWOPM_SIGNER_PORT": "many"})
    with pytest.raises(ConfigError, match="TWOPM_SIGNER_PASSWORD"):
        SignerSettings.from_env({"TWOPM_SIGNER_PASSWORD": "hunter2"})


def test_secret_files_must_be_0600_and_the_password_not_empty(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("\n")
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="0640"):
        check_secret_file(path)
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="empty"):
        read_password(path)
    path.write_text("pass word\n")
    assert read_password(path) == "pass word"

    def no_terminal(prompt: str) -> str:
        raise EOFError

    with pytest.raises(ConfigError, match="--password-file"):
        read_password(None, prompt=no_terminal)
    answers = iter(["one", "two"])
    with pytest.raises(ConfigError, match="differ"):
        read_password(None, confirm=True, prompt=lambda _: next(answers))


def test_problem_reasons_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "signer.md").read_text()
    missing = [reason for reason in signer.REASONS if f"`{reason}`" not in doc]
    assert not missing, json.dumps(missing)


L1_TABLE = """
[l1_fee]
max_total_fee_per_tx_wei = "1000000000000000"
l1_base_fee_wei = "20000000000"
l1_blob_base_fee_wei = 1000000000
commit_scalar = "500000000"
blob_scalar = "500000000"
penalty_factor = 10000
"""
CEILINGS = L1FeeParams(20 * 10**9, 10**9, 500_000_000, 500_000_000, 10_000)


def test_the_l1_fee_table_caps_gas_times_max_fee_plus_the_l1_bound() -> None:
    policy = parse_policy(POLICY + L1_TABLE)
    assert policy.l1_fee is not None and policy.l1_fee.ceilings == CEILINGS
    raw = bytes(range(200))  # stands for signed bytes; incompressible, so charged at 200 bytes
    bound = l1_fee_wei(raw, CEILINGS)
    assert bound == CEILINGS.fee_wei(200) > 0
    cap = 10**15
    under = (cap - bound) // 10**9  # gas at 1 gwei that just fits
    assert policy.check_total_fee(tx(gas=under), raw) == bound
    with pytest.raises(PolicyViolation) as exc:
        policy.check_total_fee(tx(gas=under + 1), raw)
    assert exc.value.reason == "total_fee_over_cap" and str(cap) in exc.value.detail
    # the table is part of the digest; without it nothing is checked and the digest is as before
    plain = parse_policy(POLICY)
    assert plain.check_total_fee(tx(gas=10**9), raw) is None
    assert plain.digest != policy.digest and "l1_fee" not in plain.canonical()
    assert policy.canonical()["l1_fee"]["penalty_factor"] == 10_000
    # the generated policy writes the same table back
    again = parse_policy(policy_for_deployment({}, chain_id=534351, l1_fee=policy.l1_fee))
    assert again.l1_fee == policy.l1_fee


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (L1_TABLE.replace("penalty_factor = 10000", "penalty_factor = 0"), "must be positive"),
        (L1_TABLE.replace('commit_scalar = "500000000"\n', ""), "needs commit_scalar"),
        (L1_TABLE + "surcharge = 1\n", "surcharge"),
        (L1_TABLE.replace('blob_scalar = "500000000"', 'blob_scalar = "-1"'), "blob_scalar"),
        ("\nl1_fee = 5\n", "must be a table"),
    ],
)
def test_an_invalid_l1_fee_table_is_refused(table: str, message: str) -> None:
    text = table + POLICY if table.startswith("\nl1_fee") else POLICY + table
    with pytest.raises(ConfigError, match=message):
        parse_policy(text)
