from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from gateway_support import (
    DOMAIN,
    free_port,
    future,
    serve,
    session_headers,
    sign,
    sign_in,
    siwe_message,
)

from gateway import GatewaySettings, SignInRejected, create_app
from gateway._auth import Auth
from gateway._state import MemoryState

KEY = "0x" + "11" * 32
OTHER_KEY = "0x" + "22" * 32
ADDRESS = Account.from_key(KEY).address
VECTORS = Path("/work/shared/siwe-vectors")


@pytest.fixture
def client(base_settings: GatewaySettings) -> Iterator[httpx.Client]:
    with serve(create_app(base_settings)) as url, httpx.Client(base_url=url) as c:
        yield c


def _verify(client: httpx.Client, message: str, signature: str) -> httpx.Response:
    return client.post("/v1/auth/verify", json={"message": message, "signature": signature})


def _nonce(client: httpx.Client) -> str:
    return str(client.get("/v1/auth/nonce").json()["nonce"])


def _assert_refused(r: httpx.Response, reason: str) -> dict[str, object]:
    """A 401 sign-in refusal whose machine-readable ``reason`` is ``reason``."""
    body = _assert_problem(r, 401)
    assert body["type"] == "https://2pm.dev/problems/sign-in-rejected", body
    assert body["reason"] == reason, body
    return body


def _assert_problem(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    return dict(body)


def test_nonce_is_fresh_and_names_the_fields_the_message_must_carry(client: httpx.Client) -> None:
    a, b = client.get("/v1/auth/nonce").json(), client.get("/v1/auth/nonce").json()
    assert a["nonce"] != b["nonce"] and len(a["nonce"]) >= 8
    assert a["domain"] == DOMAIN and a["chain_id"] == 534351 and a["uri"] == "https://gw.test"


def test_sign_in_sets_a_secure_httponly_samesite_cookie(client: httpx.Client) -> None:
    nonce = _nonce(client)
    message = siwe_message(ADDRESS, nonce)
    r = _verify(client, message, sign(message, KEY))
    assert r.status_code == 200, r.text
    assert r.json()["address"] == ADDRESS
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie


def test_me_reports_the_signed_in_address(client: httpx.Client) -> None:
    token = sign_in(client, KEY)
    r = client.get("/v1/me", headers=session_headers(token))
    assert r.status_code == 200, r.text
    assert r.json()["address"] == ADDRESS and r.json()["via"] == "session"


def test_me_without_credentials_is_401_problem(client: httpx.Client) -> None:
    _assert_problem(client.get("/v1/me"), 401)


def test_verify_rejects_a_reused_nonce(client: httpx.Client) -> None:
    nonce = _nonce(client)
    message = siwe_message(ADDRESS, nonce)
    signature = sign(message, KEY)
    assert _verify(client, message, signature).status_code == 200
    body = _assert_refused(_verify(client, message, signature), "nonce-reused")
    assert "nonce" in str(body["detail"])


def test_verify_rejects_a_nonce_the_gateway_never_issued(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, "NeverIssued12345")
    _assert_refused(_verify(client, message, sign(message, KEY)), "nonce-unknown")


def test_verify_rejects_an_expired_message(client: httpx.Client) -> None:
    past = datetime.now(UTC) - timedelta(seconds=30)
    message = siwe_message(
        ADDRESS, _nonce(client), issued_at=past - timedelta(seconds=30), expiration=past
    )
    body = _assert_refused(_verify(client, message, sign(message, KEY)), "expired")
    assert "expired" in str(body["detail"])


def test_verify_rejects_a_message_that_is_not_valid_yet(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client), not_before=future(3600))
    _assert_refused(_verify(client, message, sign(message, KEY)), "not-yet-valid")


def test_verify_rejects_an_issued_at_in_the_future(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client), issued_at=future(3600))
    _assert_refused(_verify(client, message, sign(message, KEY)), "issued-in-future")


def test_verify_rejects_an_old_message(client: httpx.Client) -> None:
    old = datetime.now(UTC) - timedelta(hours=2)
    message = siwe_message(ADDRESS, _nonce(client), issued_at=old)
    _assert_refused(_verify(client, message, sign(message, KEY)), "too-old")


def test_verify_rejects_a_wrong_domain(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client), domain="evil.example")
    body = _assert_refused(_verify(client, message, sign(message, KEY)), "domain-mismatch")
    assert "domain" in str(body["detail"])


def test_verify_rejects_a_uri_on_another_origin(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client), uri="https://evil.example/login")
    _assert_refused(_verify(client, message, sign(message, KEY)), "uri-mismatch")


def test_verify_rejects_a_scheme_other_than_the_gateways(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client))
    message = message.replace(f"{DOMAIN} wants", f"http://{DOMAIN} wants", 1)
    _assert_refused(_verify(client, message, sign(message, KEY)), "scheme-mismatch")


def test_verify_rejects_a_wrong_chain(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client), chain_id=1)
    body = _assert_refused(_verify(client, message, sign(message, KEY)), "chain-id-mismatch")
    assert "chain" in str(body["detail"])


def test_verify_rejects_a_tampered_signature(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client))
    signature = sign(message, KEY)
    tampered = signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    _assert_refused(_verify(client, message, tampered), "bad-signature")


def test_verify_rejects_a_tampered_message(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client))
    signature = sign(message, KEY)
    _assert_refused(
        _verify(client, message.replace("Sign in", "Sign up"), signature), "bad-signature"
    )


def test_verify_rejects_a_signature_from_another_key(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client))
    _assert_refused(_verify(client, message, sign(message, OTHER_KEY)), "bad-signature")


def test_a_rejected_signature_does_not_burn_the_nonce(client: httpx.Client) -> None:
    nonce = _nonce(client)
    message = siwe_message(ADDRESS, nonce)
    _assert_refused(_verify(client, message, sign(message, OTHER_KEY)), "bad-signature")
    assert _verify(client, message, sign(message, KEY)).status_code == 200


def test_verify_rejects_a_malformed_message_with_400(client: httpx.Client) -> None:
    _assert_problem(_verify(client, "hello", sign("hello", KEY)), 400)


def test_verify_rejects_a_non_hex_signature_with_400(client: httpx.Client) -> None:
    message = siwe_message(ADDRESS, _nonce(client))
    _assert_problem(_verify(client, message, "0xnothex"), 400)


def test_verify_rejects_a_body_without_fields_with_400(client: httpx.Client) -> None:
    _assert_problem(client.post("/v1/auth/verify", json={"message": "x"}), 400)


def _public_signed_vectors() -> list[tuple[str, str, str]]:
    cases = []
    for name in (
        "spruceid_siwe_verification_positive.json",
        "spruceid_siwe_verification_negative.json",
        "signinwithethereum_siwe_verification_positive.json",
    ):
        for case, f in json.loads((VECTORS / name).read_text()).items():
            lines = [
                f"{f['domain']} wants you to sign in with your Ethereum account:",
                f["address"],
                "",
            ]
            if f.get("statement") is not None:
                lines += [f["statement"], ""]
            lines += [
                f"URI: {f['uri']}",
                f"Version: {f['version']}",
                f"Chain ID: {f['chainId']}",
                f"Nonce: {f['nonce']}",
                f"Issued At: {f['issuedAt']}",
            ]
            if f.get("expirationTime"):
                lines.append(f"Expiration Time: {f['expirationTime']}")
            if f.get("notBefore"):
                lines.append(f"Not Before: {f['notBefore']}")
            cases.append((f"{name}:{case}", "\n".join(lines), f["signature"]))
    for name in ("spruceid_siwe_eip1271.json",):
        for case, f in json.loads((VECTORS / name).read_text()).items():
            cases.append((f"{name}:{case}", f["message"], f["signature"]))
    return cases


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_verify_rejects_every_public_signed_vector(client: httpx.Client) -> None:
    # Foreign domains, nonces never issued here, 2022 dates: all must be refused, never 5xx.
    cases = _public_signed_vectors()
    assert len(cases) >= 15
    for case, message, signature in cases:
        r = _verify(client, message, signature)
        assert r.status_code in (400, 401), (case, r.status_code, r.text)


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_verify_rejects_every_public_parsing_negative_with_400(client: httpx.Client) -> None:
    cases = json.loads((VECTORS / "signinwithethereum_siwe_parsing_negative.json").read_text())
    for case, message in cases.items():
        r = _verify(client, message, sign(message, KEY))
        assert r.status_code in (400, 401), (case, r.status_code, r.text)


def test_a_session_after_logout_is_refused(client: httpx.Client) -> None:
    token = sign_in(client, KEY)
    assert client.get("/v1/me", headers=session_headers(token)).status_code == 200
    r = client.post("/v1/auth/logout", headers=session_headers(token))
    assert r.status_code == 204 and r.content == b"" and "content-type" not in r.headers
    cleared = r.headers["set-cookie"].lower()
    assert cleared.startswith("twopm_session=") and "max-age=0" in cleared
    _assert_problem(client.get("/v1/me", headers=session_headers(token)), 401)


def test_an_unknown_session_cookie_is_refused(client: httpx.Client) -> None:
    _assert_problem(client.get("/v1/me", headers=session_headers("forged")), 401)


def test_nonce_requests_are_rate_limited_per_client_address(client: httpx.Client) -> None:
    statuses = [client.get("/v1/auth/nonce").status_code for _ in range(40)]
    assert 429 in statuses
    r = client.get("/v1/auth/nonce")
    body = _assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1 and int(str(body["retry_after_s"])) >= 1


# ----------------------------------------------------------------------------- API keys


def test_an_api_key_is_shown_once_and_authenticates_as_its_owner(client: httpx.Client) -> None:
    token = sign_in(client, KEY)
    r = client.post("/v1/keys", json={"name": "app"}, headers=session_headers(token))
    assert r.status_code == 201, r.text
    secret = r.json()["key"]
    listed = client.get("/v1/keys", headers=session_headers(token)).json()["keys"]
    assert [k["id"] for k in listed] == [r.json()["id"]]
    assert secret not in json.dumps(listed) and "secret" not in json.dumps(listed)
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {secret}"}).json()
    assert me["address"] == ADDRESS and me["via"] == "key"


def test_a_key_after_revocation_is_refused(client: httpx.Client) -> None:
    token = sign_in(client, KEY)
    created = client.post("/v1/keys", json={}, headers=session_headers(token)).json()
    bearer = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/me", headers=bearer).status_code == 200
    r = client.delete(f"/v1/keys/{created['id']}", headers=session_headers(token))
    assert r.status_code == 204
    _assert_problem(client.get("/v1/me", headers=bearer), 401)
    assert client.get("/v1/keys", headers=session_headers(token)).json()["keys"] == []


def test_a_forged_key_with_a_real_id_is_refused(client: httpx.Client) -> None:
    token = sign_in(client, KEY)
    created = client.post("/v1/keys", json={}, headers=session_headers(token)).json()
    forged = f"twopm_{created['id']}_{'A' * 43}"
    _assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)


def test_malformed_authorization_headers_are_refused(client: httpx.Client) -> None:
    for header in ("Basic abc", "Bearer", "Bearer nope"):
        _assert_problem(client.get("/v1/me", headers={"Authorization": header}), 401)


def test_keys_cannot_be_managed_with_a_key(client: httpx.Client) -> None:
    token = sign_in(client, KEY)
    secret = client.post("/v1/keys", json={}, headers=session_headers(token)).json()["key"]
    r = client.post("/v1/keys", json={}, headers={"Authorization": f"Bearer {secret}"})
    _assert_problem(r, 403)


def test_revoking_someone_elses_key_is_404(client: httpx.Client) -> None:
    mine = sign_in(client, KEY)
    theirs = sign_in(client, OTHER_KEY)
    created = client.post("/v1/keys", json={}, headers=session_headers(theirs)).json()
    _assert_problem(client.delete(f"/v1/keys/{created['id']}", headers=session_headers(mine)), 404)


def test_an_address_holds_a_bounded_number_of_keys(base_settings: GatewaySettings) -> None:
    settings = base_settings.with_(max_keys_per_owner=2)
    with serve(create_app(settings)) as url, httpx.Client(base_url=url) as client:
        token = sign_in(client, KEY)
        for _ in range(2):
            assert (
                client.post("/v1/keys", json={}, headers=session_headers(token)).status_code == 201
            )
        _assert_problem(client.post("/v1/keys", json={}, headers=session_headers(token)), 409)


def test_a_key_name_that_is_too_long_is_400(client: httpx.Client) -> None:
    token = sign_in(client, KEY)
    _assert_problem(
        client.post("/v1/keys", json={"name": "x" * 65}, headers=session_headers(token)), 400
    )


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_verify_says_when_the_contract_wallet_check_cannot_reach_the_chain(
    base_settings: GatewaySettings,
) -> None:
    # A signature that is not the address's own sends siwe to EIP-1271 through rpc_url; here
    # nothing listens there (a fault no user runs on purpose).
    auth = Auth(base_settings.with_(rpc_url=f"http://127.0.0.1:{free_port()}"), MemoryState())

    async def sign_in_with_another_key() -> None:
        message = siwe_message(ADDRESS, await auth.issue_nonce())
        await auth.verify(message, sign(message, OTHER_KEY))

    with pytest.raises(SignInRejected) as caught:
        asyncio.run(sign_in_with_another_key())
    assert caught.value.reason == "signature-unverifiable"
    assert caught.value.extra == {"reason": "signature-unverifiable"}
