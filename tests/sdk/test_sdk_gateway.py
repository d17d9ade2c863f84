"""GatewayClient against a real gateway on loopback, a real anvil and a real signer process."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sdk_support import PUBLIC_URL, SignerProcess, he_routes, serve, start_signer, wait_until
from service_support import create_subnet

from ckks import DEFAULT_PARAMS, sigmoid
from clients.sdk import (
    AsyncGatewayClient,
    AuthError,
    ChainClient,
    ForbiddenError,
    GatewayClient,
    InsufficientStake,
    InvalidInput,
    NotFound,
    PaymentRequired,
    RateLimited,
    Subnet,
    Wallet,
)
from contracts import Anvil, Deployment, Transactor
from gateway import GatewaySettings, create_app
from gateway.he import HeEvaluator, LinearModel

ETH = 10**18
PRICE_WEI = 10**12
MIN_STAKE_WEI = ETH
FEATURES = ("age", "income", "score", "tenure", "visits")
MODEL = LinearModel.from_arrays([0.8, -1.2, 0.3, 2.0, -0.5], 0.25)


@pytest.fixture(scope="module")
def module_chain(anvil: Anvil, deployment: Deployment) -> Iterator[None]:
    """Revert the chain after the module: the signer, subnet and users are this module's only."""
    snapshot = anvil.snapshot()
    yield
    anvil.revert(snapshot)


@pytest.fixture(scope="module")
def signer(
    tmp_path_factory: pytest.TempPathFactory,
    anvil: Anvil,
    deployment: Deployment,
    module_chain: None,
) -> Iterator[SignerProcess]:
    proc = start_signer(
        tmp_path_factory.mktemp("sdk-signer"), deployment, anvil.accounts[1].private_key
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def subnet_id(anvil: Anvil, deployment: Deployment, module_chain: None) -> int:
    return create_subnet(
        anvil.w3,
        deployment,
        anvil.accounts[0].private_key,
        name="sdk-test",
        price_wei=PRICE_WEI,
        min_stake_wei=MIN_STAKE_WEI,
        contributor=anvil.accounts[5].address,
    )


@pytest.fixture(scope="module")
def evaluator() -> HeEvaluator:
    return HeEvaluator(DEFAULT_PARAMS, context_cache_size=1)


@pytest.fixture(scope="module")
def gateway_url(
    tmp_path_factory: pytest.TempPathFactory,
    anvil: Anvil,
    deployment: Deployment,
    signer: SignerProcess,
    subnet_id: int,
    evaluator: HeEvaluator,
) -> Iterator[str]:
    settings = GatewaySettings(
        public_url=PUBLIC_URL,
        rpc_url=anvil.rpc_url,
        contracts=dict(deployment.addresses),
        signer_url=signer.url,
        signer_secret=signer.secret_hex,
        signer_caller_id="gateway",
        queue_path=tmp_path_factory.mktemp("sdk-gw") / "receipts.sqlite3",
        enable_noop_route=True,
        recorder_enabled=True,
        batch_max_age_s=0.2,
        event_poll_interval_s=0.2,
        settle_interval_s=0,
    )
    app = create_app(settings, extra_route_handlers=he_routes(evaluator, MODEL))
    with serve(app) as url:
        yield url


@pytest.fixture
def gw(gateway_url: str) -> Iterator[GatewayClient]:
    with GatewayClient(gateway_url, timeout_s=30) as client:
        yield client


@pytest.fixture
def make_user(
    anvil: Anvil, deployment: Deployment, fund: Callable[[str], None], mint: Any
) -> Callable[..., tuple[Wallet, ChainClient]]:
    def make(
        stake_wei: int = 2 * ETH, credit_wei: int = 10**16, cap_wei: int | None = 10**16
    ) -> tuple[Wallet, ChainClient]:
        wallet = Wallet.create()
        fund(wallet.address)
        chain = ChainClient.connect(anvil.rpc_url, deployment.addresses, wallet)
        if stake_wei:
            mint(wallet, "rETH", stake_wei)
            chain.stake("rETH", stake_wei)
        if credit_wei:
            chain.deposit(credit_wei)
        if cap_wei is not None:
            chain.authorize_spending(chain.sign_spending_authorization(cap_wei))
        return wallet, chain

    return make


@pytest.fixture(scope="module")
def member(
    anvil: Anvil, deployment: Deployment, gateway_url: str
) -> tuple[Wallet, ChainClient, str]:
    """One staked, funded and authorised user signed in once, shared by the module's tests."""
    wallet = Wallet.create()
    anvil.w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**21)])  # type: ignore[arg-type]
    chain = ChainClient.connect(anvil.rpc_url, deployment.addresses, wallet)
    Transactor(anvil.w3, wallet._private_key_hex()).transact(
        deployment.contract("MockRETH").functions.mint(wallet.address, 2 * ETH)
    )
    chain.stake("rETH", 2 * ETH)
    chain.deposit(10**16)
    chain.authorize_spending(chain.sign_spending_authorization(10**16))
    with GatewayClient(gateway_url) as client:
        token = client.sign_in(wallet)
    return wallet, chain, token


@pytest.fixture
def member_gw(gateway_url: str, member: tuple[Wallet, ChainClient, str]) -> Iterator[GatewayClient]:
    """A client carrying the shared member's session."""
    with GatewayClient(gateway_url, session_token=member[2], timeout_s=30) as client:
        yield client


def _noop(gw: GatewayClient, subnet_id: int, rows: int = 1) -> str:
    """A billed call through the gateway's test-only no-op route; returns the receipt id."""
    response = gw._request("POST", f"/v1/subnets/{subnet_id}/noop", json={"rows": rows})
    return str(response.headers["x-receipt-id"])


# ----------------------------------------------------------------------------- sign-in and keys


def test_sign_in_opens_a_session_that_me_reports(gw: GatewayClient, make_user: Any) -> None:
    wallet, _ = make_user()
    token = gw.sign_in(wallet, expected_domain="gw.test", expected_chain_id=534351)
    assert token and gw.session_token == token
    me = gw.me()
    assert (me.address, me.via, me.key_id) == (wallet.address, "session", None)
    assert me.stake_wei == 2 * ETH * 114 // 100
    assert (me.credit_wei, me.cap_left_wei, me.spendable_wei) == (10**16, 10**16, 10**16)
    assert me.tier


def test_sign_in_refuses_to_sign_for_a_domain_the_caller_did_not_expect(gw: GatewayClient) -> None:
    with pytest.raises(AuthError, match=r"gw\.test"):
        gw.sign_in(Wallet.create(), expected_domain="bank.example")
    with pytest.raises(AuthError, match=r"chain 534351"):
        gw.sign_in(Wallet.create(), expected_chain_id=1)
    assert gw.session_token is None


def test_me_without_credentials_is_an_auth_error(gw: GatewayClient) -> None:
    with pytest.raises(AuthError) as caught:
        gw.me()
    assert caught.value.status_code == 401 and caught.value.problem_type.endswith(
        "not-authenticated"
    )


def test_a_session_token_carries_over_to_a_new_client_until_logout(
    gw: GatewayClient, gateway_url: str
) -> None:
    wallet = Wallet.create()
    token = gw.sign_in(wallet)
    with GatewayClient(gateway_url, session_token=token) as other:
        assert other.me().address == wallet.address
    gw.logout()
    assert gw.session_token is None
    with GatewayClient(gateway_url, session_token=token) as other, pytest.raises(AuthError):
        other.me()


def test_an_api_key_authenticates_as_its_owner_until_revoked(
    gw: GatewayClient, gateway_url: str
) -> None:
    wallet = Wallet.create()
    gw.sign_in(wallet)
    key = gw.create_api_key("ci", subnets=[3, 1])
    assert key.secret.startswith("twopm_") and key.subnets == (1, 3) and key.owner == wallet.address
    assert [k.id for k in gw.list_api_keys()] == [key.id]
    assert "secret" not in repr(key) and key.secret not in repr(key)
    with GatewayClient(gateway_url, api_key=key.secret) as app:
        me = app.me()
        assert (me.address, me.via, me.key_id) == (wallet.address, "key", key.id)
        with pytest.raises(ForbiddenError):
            app.list_api_keys()  # keys are managed from a session only
        gw.revoke_api_key(key.id)
        with pytest.raises(AuthError):
            app.me()
    assert gw.list_api_keys() == []


def test_revoking_a_key_that_is_not_yours_is_not_found(gw: GatewayClient) -> None:
    gw.sign_in(Wallet.create())
    with pytest.raises(NotFound):
        gw.revoke_api_key("0123456789abcdef")
    with pytest.raises(InvalidInput):
        gw.revoke_api_key("../keys")


def test_a_bad_key_name_is_a_bad_request(gw: GatewayClient) -> None:
    gw.sign_in(Wallet.create())
    with pytest.raises(Exception) as caught:
        gw.create_api_key("x" * 65)
    assert type(caught.value).__name__ == "BadRequest" and caught.value.status_code == 400  # type: ignore[attr-defined]


def test_nonce_floods_are_rate_limited_with_a_retry_after(tmp_path: Path) -> None:
    settings = GatewaySettings(
        public_url=PUBLIC_URL, recorder_enabled=False, queue_path=tmp_path / "q"
    )
    with serve(create_app(settings)) as url, GatewayClient(url) as client:
        with pytest.raises(RateLimited) as caught:
            for _ in range(50):
                client._request("GET", "/v1/auth/nonce", authenticated=False)
        assert caught.value.retry_after_s >= 1


# ----------------------------------------------------------------------------- subnets and billing


def test_subnets_list_the_published_subnet_with_its_price_and_minimum_stake(
    gw: GatewayClient, subnet_id: int
) -> None:
    listed = {s.id: s for s in gw.subnets()}
    one = gw.subnet(subnet_id)
    assert listed[subnet_id] == one
    assert (one.name, one.price_per_row_wei, one.min_stake_wei, one.model_version) == (
        "sdk-test",
        PRICE_WEI,
        MIN_STAKE_WEI,
        1,
    )
    assert one.model_hash == "0x" + "ab" * 32
    with pytest.raises(NotFound):
        gw.subnet(10_000)


def test_stake_below_the_minimum_is_insufficient_stake_with_both_amounts(
    gw: GatewayClient, make_user: Any, subnet_id: int
) -> None:
    wallet, _ = make_user(stake_wei=ETH // 2)
    gw.sign_in(wallet)
    with pytest.raises(InsufficientStake) as caught:
        _noop(gw, subnet_id)
    assert caught.value.required_stake_wei == MIN_STAKE_WEI
    assert caught.value.actual_stake_wei == ETH // 2 * 114 // 100


def test_no_credit_is_payment_required_with_what_is_missing(
    gw: GatewayClient, make_user: Any, subnet_id: int
) -> None:
    wallet, _ = make_user(credit_wei=0)
    gw.sign_in(wallet)
    with pytest.raises(PaymentRequired) as caught:
        _noop(gw, subnet_id)
    assert caught.value.missing_wei == PRICE_WEI


def test_a_cap_submitted_through_the_gateway_opens_credit(
    gw: GatewayClient, make_user: Any, subnet_id: int
) -> None:
    wallet, chain = make_user(cap_wei=None)
    gw.sign_in(wallet)
    with pytest.raises(PaymentRequired, match="spending authorisation"):
        _noop(gw, subnet_id)
    tx_hash = gw.submit_spending_authorization(chain.sign_spending_authorization(5 * PRICE_WEI))
    assert tx_hash.startswith("0x")
    wait_until(lambda: chain.credit().spendable_wei == 5 * PRICE_WEI)
    wait_until(lambda: gw.me().spendable_wei == 5 * PRICE_WEI)
    assert _noop(gw, subnet_id).startswith("0x")


def test_someone_elses_cap_is_forbidden(gw: GatewayClient, make_user: Any) -> None:
    _, chain = make_user(cap_wei=None)
    gw.sign_in(Wallet.create())
    with pytest.raises(ForbiddenError):
        gw.submit_spending_authorization(chain.sign_spending_authorization(PRICE_WEI))


# ----------------------------------------------------------------------------- receipts


def test_a_receipt_is_recorded_and_its_proof_verifies_against_the_root_on_chain(
    member_gw: GatewayClient,
    member: Any,
    subnet_id: int,
    anvil: Anvil,
    deployment: Deployment,
) -> None:
    gw, wallet = member_gw, member[0]
    receipt_ids = [_noop(gw, subnet_id, rows) for rows in (1, 3)]
    reader = ChainClient.connect(anvil.rpc_url, deployment.addresses)
    for receipt_id in receipt_ids:
        record = gw.wait_for_receipt(receipt_id, timeout_s=30)
        assert record.status == "recorded" and record.receipt_id == receipt_id
        assert record.receipt.user == wallet.address and record.batch is not None
        check = gw.verify_receipt(record, reader)
        assert check and check.proven_locally and check.proven_on_chain and check.reason is None
        assert check.root == record.batch.root
    assert gw.verify_receipt(receipt_ids[0], reader).valid  # by id, fetched again


def test_a_tampered_receipt_does_not_verify(
    member_gw: GatewayClient,
    member: Any,
    subnet_id: int,
    anvil: Anvil,
    deployment: Deployment,
) -> None:
    gw = member_gw
    record = gw.wait_for_receipt(_noop(gw, subnet_id), timeout_s=30)
    reader = ChainClient.connect(anvil.rpc_url, deployment.addresses)
    cheaper = dataclasses.replace(record, receipt=dataclasses.replace(record.receipt, price_wei=1))
    check = gw.verify_receipt(cheaper, reader)
    assert not check and "leaf" in (check.reason or "")
    cheaper = dataclasses.replace(cheaper, leaf=None)
    check = gw.verify_receipt(cheaper, reader)
    assert not check and not check.proven_locally and not check.proven_on_chain
    assert record.batch is not None and record.batch.batch_id is not None
    elsewhere = dataclasses.replace(
        record, batch=dataclasses.replace(record.batch, batch_id=10_000)
    )
    check = gw.verify_receipt(elsewhere, reader)
    assert not check and "InferenceLedgerUnknownBatch" in (check.reason or "")


def test_an_unrecorded_receipt_is_reported_as_not_recorded_yet(
    member_gw: GatewayClient,
    member: Any,
    subnet_id: int,
    anvil: Anvil,
    deployment: Deployment,
) -> None:
    gw = member_gw
    record = gw.receipt(_noop(gw, subnet_id))
    reader = ChainClient.connect(anvil.rpc_url, deployment.addresses)
    pending = dataclasses.replace(record, status="queued", batch=None, proof=None)
    check = gw.verify_receipt(pending, reader)
    assert not check and check.reason == "not recorded yet (status queued)"
    failed = dataclasses.replace(pending, status="failed")
    assert gw.verify_receipt(failed, reader).reason == "the gateway failed to record it: None"


def test_someone_elses_receipt_is_not_found(
    member_gw: GatewayClient, member: Any, subnet_id: int
) -> None:
    gw = member_gw
    receipt_id = _noop(gw, subnet_id)
    gw.sign_in(Wallet.create())
    with pytest.raises(NotFound):
        gw.receipt(receipt_id)
    with pytest.raises(InvalidInput):
        gw.receipt("0x1234")


# ----------------------------------------------------------------------------- encrypted inference


def _he_subnet(gw: GatewayClient, subnet_id: int) -> Subnet:
    """The subnet as the gateway will advertise it once its HE routes land (features, CKKS)."""
    return dataclasses.replace(
        gw.subnet(subnet_id), feature_names=FEATURES, ckks=DEFAULT_PARAMS.to_dict()
    )


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(n).normal(size=(n, len(FEATURES)))


def _expected_logits(x: np.ndarray) -> np.ndarray:
    return x @ np.asarray(MODEL.weights) + MODEL.intercept


@pytest.mark.parametrize(
    ("n_rows", "layout"), [(1, "coeff"), (2, "coeff"), (3, "column"), (40, "column")]
)
def test_encrypted_predictions_pick_the_layout_by_batch_size_and_match_the_plaintext_model(
    member_gw: GatewayClient,
    member: Any,
    subnet_id: int,
    n_rows: int,
    layout: str,
) -> None:
    gw = member_gw
    x = _rows(n_rows)
    result = gw.predict_encrypted(_he_subnet(gw, subnet_id), x)
    assert result.layout == layout and result.logits is not None
    np.testing.assert_allclose(result.logits, _expected_logits(x), atol=1e-4)
    np.testing.assert_allclose(result.probabilities, sigmoid(_expected_logits(x)), atol=1e-4)
    assert len(result.receipt_ids) == 1
    assert gw.receipt(result.receipt_ids[0]).receipt.price_wei == n_rows * PRICE_WEI


def test_rows_given_by_feature_name_are_put_in_the_subnets_order(
    member_gw: GatewayClient, member: Any, subnet_id: int
) -> None:
    gw = member_gw
    x = _rows(2)
    named = [dict(reversed(list(zip(FEATURES, map(float, row), strict=True)))) for row in x]
    result = gw.predict_encrypted(_he_subnet(gw, subnet_id), named)
    np.testing.assert_allclose(result.logits, _expected_logits(x), atol=1e-4)  # type: ignore[arg-type]


def test_the_row_layout_uploads_its_context_once_and_again_after_the_gateway_forgot_it(
    member_gw: GatewayClient, gateway_url: str, member: Any, make_user: Any, subnet_id: int
) -> None:
    gw = member_gw
    subnet = _he_subnet(gw, subnet_id)
    first = gw.predict_encrypted(subnet, _rows(1), layout="row")
    assert first.layout == "row" and len(gw._contexts) == 1
    np.testing.assert_allclose(first.logits, _expected_logits(_rows(1)), atol=1e-4)  # type: ignore[arg-type]
    # Another caller's row context evicts ours from the gateway's one-entry cache.
    other_wallet, _ = make_user()
    with GatewayClient(gateway_url) as other:
        other.sign_in(other_wallet)
        other.predict_encrypted(subnet, _rows(1), layout="row")
    again = gw.predict_encrypted(subnet, _rows(2), layout="row")
    np.testing.assert_allclose(again.logits, _expected_logits(_rows(2)), atol=1e-4)  # type: ignore[arg-type]
    assert len(gw._contexts) == 1


def test_encrypted_inference_is_gated_like_every_paid_call(
    gw: GatewayClient, make_user: Any, subnet_id: int
) -> None:
    wallet, _ = make_user(stake_wei=0)
    gw.sign_in(wallet)
    with pytest.raises(InsufficientStake):
        gw.predict_encrypted(_he_subnet(gw, subnet_id), _rows(3))


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([[1.0, 2.0]], "expects 5"),
        ([[float("nan")] * 5], "non-finite"),
        ([], "shape"),
        ([{"age": 1.0}], "missing features"),
        ([{**dict.fromkeys(FEATURES, 1.0), "zip": 1.0}], "unknown features"),
        ("text", "shape"),
    ],
)
def test_malformed_rows_are_refused_before_anything_is_sent(
    gw: GatewayClient, subnet_id: int, rows: Any, match: str
) -> None:
    subnet = _he_subnet(gw, subnet_id)
    with pytest.raises(InvalidInput, match=match):
        gw.predict_encrypted(subnet, rows)


def test_an_unknown_layout_is_invalid_input(gw: GatewayClient, subnet_id: int) -> None:
    with pytest.raises(InvalidInput, match="unknown layout"):
        gw.predict_encrypted(_he_subnet(gw, subnet_id), _rows(1), layout="diagonal")


def test_a_subnet_without_ckks_parameters_cannot_be_called_encrypted(
    gw: GatewayClient, subnet_id: int
) -> None:
    subnet = dataclasses.replace(_he_subnet(gw, subnet_id), ckks=None)
    with pytest.raises(Exception, match="does not offer encrypted inference"):
        gw.predict_encrypted(subnet, _rows(1))
    weak = dataclasses.replace(
        subnet,
        ckks={"poly_modulus_degree": 4096, "coeff_mod_bit_sizes": [40, 20, 40], "scale_bits": 20},
    )
    with pytest.raises(Exception, match="Unusable CKKS parameters"):
        gw.predict_encrypted(weak, _rows(1))


def test_plaintext_predictions_name_the_features_and_bill_every_row(
    member_gw: GatewayClient, subnet_id: int
) -> None:
    x = _rows(3)
    subnet = _he_subnet(member_gw, subnet_id)
    by_array = member_gw.predict(subnet, x)
    named = [dict(zip(FEATURES, map(float, row), strict=True)) for row in x]
    by_name = member_gw.predict(subnet_id, named)
    for result in (by_array, by_name):
        assert result.layout == "plain" and len(result.receipt_ids) == 1
        np.testing.assert_allclose(result.probabilities, sigmoid(_expected_logits(x)), atol=1e-12)
    assert member_gw.receipt(by_array.receipt_ids[0]).receipt.price_wei == 3 * PRICE_WEI
    with pytest.raises(InvalidInput, match="does not name its features"):
        member_gw.predict(subnet_id, x)  # the gateway's subnet JSON has no feature names yet


def test_a_batch_larger_than_the_slots_is_split_into_requests_and_reassembled_in_order(
    member_gw: GatewayClient, subnet_id: int
) -> None:
    x = _rows(DEFAULT_PARAMS.slots + 3)
    result = member_gw.predict_encrypted(_he_subnet(member_gw, subnet_id), x)
    assert result.layout == "column" and len(result.receipt_ids) == 2
    np.testing.assert_allclose(result.logits, _expected_logits(x), atol=1e-4)  # type: ignore[arg-type]
    prices = [member_gw.receipt(r).receipt.price_wei for r in result.receipt_ids]
    assert prices == [DEFAULT_PARAMS.slots * PRICE_WEI, 3 * PRICE_WEI]


def test_the_async_client_signs_in_manages_keys_predicts_and_proves_receipts(
    gateway_url: str, make_user: Any, subnet_id: int, anvil: Anvil, deployment: Deployment
) -> None:
    wallet, _ = make_user()
    reader = ChainClient.connect(anvil.rpc_url, deployment.addresses)
    x = _rows(2)

    async def tour() -> None:
        async with AsyncGatewayClient(gateway_url, timeout_s=30) as gw:
            assert await gw.health()
            await gw.sign_in(wallet, expected_domain="gw.test")
            assert (await gw.me()).address == wallet.address
            key = await gw.create_api_key("async")
            assert [k.id for k in await gw.list_api_keys()] == [key.id]
            await gw.revoke_api_key(key.id)
            subnet = dataclasses.replace(
                await gw.subnet(subnet_id), feature_names=FEATURES, ckks=DEFAULT_PARAMS.to_dict()
            )
            result = await gw.predict_encrypted(subnet, x)
            np.testing.assert_allclose(result.logits, _expected_logits(x), atol=1e-4)  # type: ignore[arg-type]
            record = await gw.wait_for_receipt(result.receipt_ids[0], timeout_s=30)
            assert await gw.verify_receipt(record, reader)
            with pytest.raises(NotFound):
                await gw.subnet(10_000)
            await gw.logout()
            with pytest.raises(AuthError):
                await gw.me()

    asyncio.run(tour())
