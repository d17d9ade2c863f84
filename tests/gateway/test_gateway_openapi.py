"""The OpenAPI document tells the truth: schemathesis against a real gateway process finds nothing.

A gateway runs as its own process (``python -m clients gateway serve``) on loopback, on a real
anvil with the signer, as it does for an app developer. A user with stake, credit and a signed
spending cap signs in with SIWE and creates an API key; schemathesis then loads
``/schema/openapi.json`` and sends generated requests to every operation with that key
(``Authorization: Bearer``), in positive and negative modes, checking that no answer is a
server error and that every status, media type and body is the one the document declares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from gateway_chain import World
from gateway_support import PUBLIC_URL, free_port, session_headers, sign, sign_in, siwe_message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from service_support import SignerProcess
from test_gateway_inference_support import Publisher, spector, write

from ckks import DEFAULT_PARAMS, ClientContext, Layout
from contracts.chain import Anvil
from contracts.deploy import Deployment
from trainer.bundle import feature_schema_hash

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = int(os.environ.get("TWOPM_SCHEMATHESIS_MAX_EXAMPLES", "50"))
"""Generated requests per operation and generation mode (the run stays under about 2 minutes)."""
ANONYMOUS_EXAMPLES = 10
"""The same without credentials (every refusal is a 401 or a public route's own answer)."""


@dataclass
class Run:
    """What one schemathesis run sent and found."""

    cases: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    """Answers that passed every check, by operation and status."""


@pytest.fixture
def served_subnet(tmp_path: Path, anvil: Anvil, deployment: Deployment, world: World) -> int:
    """A subnet whose published model (a real bundle on the Spector data) the gateway serves."""
    dataset = spector()
    bundle = write(dataset, tmp_path / "models")
    publisher = Publisher(anvil.w3, deployment, anvil.accounts[0].private_key)
    subnet_id = publisher.create("schemathesis")
    schema = feature_schema_hash(list(dataset.feature_names), dataset.label)
    publisher.publish(subnet_id, bundle.sha256, bundle.path.as_uri(), schema)
    return subnet_id


@pytest.fixture
def gateway_url(
    tmp_path: Path,
    anvil: Anvil,
    deployment: Deployment,
    signer_proc: SignerProcess,
    served_subnet: int,
) -> Iterator[str]:
    """A ``twopm gateway serve`` process on a free loopback port, in memory mode, on anvil."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWOPM_")}
    env.update(
        {
            "TWOPM_GATEWAY_PUBLIC_URL": PUBLIC_URL,
            "TWOPM_GATEWAY_RPC_URL": anvil.rpc_url,
            "TWOPM_GATEWAY_CONTRACTS": json.dumps(dict(deployment.addresses)),
            "TWOPM_GATEWAY_SIGNER_URL": signer_proc.url,
            "TWOPM_GATEWAY_SIGNER_SECRET": signer_proc.secret_hex,
            "TWOPM_GATEWAY_SIGNER_CALLER_ID": "gateway",
            "TWOPM_GATEWAY_QUEUE_PATH": str(tmp_path / "receipts.sqlite3"),
            "TWOPM_GATEWAY_RECORDER_ENABLED": "0",
            "TWOPM_GATEWAY_EVENT_POLL_INTERVAL_S": "0.5",
            "TWOPM_GATEWAY_SETTLE_INTERVAL_S": "0",
            "TWOPM_GATEWAY_MODEL_STORE": str(tmp_path / "models"),
            "TWOPM_GATEWAY_HE_WORKERS": "1",
        }
    )
    argv = [sys.executable, "-m", "clients", "gateway", "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--log-level", "warning"]
    log_path = tmp_path / "gateway.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text()[-2000:])
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        _wait_until_served(url, served_subnet)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_served(url: str, subnet_id: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/v1/subnets/{subnet_id}", timeout=30)
        if r.status_code == 200 and r.json()["model_status"] == "ready":
            return
        time.sleep(0.2)
    raise AssertionError(f"subnet {subnet_id} never served its model: {r.text}")


@pytest.fixture
def credentials(gateway_url: str, new_user: Callable[..., Any]) -> dict[str, dict[str, str]]:
    """Headers of a user with stake, credit and a spending cap: by API key, and by session."""
    user = new_user()
    with httpx.Client(base_url=gateway_url, timeout=120) as client:
        token = sign_in(client, user.key.hex())
        r = client.post("/v1/keys", json={"name": "schemathesis"}, headers=session_headers(token))
        assert r.status_code == 201, r.text
    return {
        "key": {"Authorization": f"Bearer {r.json()['key']}"},
        "session": session_headers(token),
    }


def run_schemathesis(
    url: str,
    headers: dict[str, str],
    max_examples: int,
    served_subnet: int,
    subnet_count: int,
    skip: frozenset[str] = frozenset(),
) -> Run:
    """Every operation, positive then negative data, ``max_examples`` each; failures collected.

    A generated ``subnet_id`` naming an existing subnet is pointed at ``served_subnet``: the
    other subnets on this anvil belong to other suites, and one whose model is refused answers
    a (documented) 503, which ``not_a_server_error`` counts. Positive cases always name
    ``served_subnet`` (so their bodies reach the model and billing); negative ones keep ids of
    no subnet (404). Operations labelled in ``skip`` are left out.
    """
    schema = schemathesis.openapi.from_url(url + "/schema/openapi.json")
    run = Run()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in skip:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            send = _sender(run, operation, mode, headers, served_subnet, subnet_count)
            test = settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(case=operation.as_strategy(generation_mode=mode))(send))
            try:
                test()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode is GenerationMode.NEGATIVE, operation.label
    return run


def _sender(
    run: Run,
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    served_subnet: int,
    subnet_count: int,
) -> Callable[[schemathesis.Case], None]:
    label = f"{operation.label} [{mode.value}]"

    def send(case: schemathesis.Case) -> None:
        run.cases += 1
        subnet_id = (case.path_parameters or {}).get("subnet_id")
        known = isinstance(subnet_id, int) and 1 <= subnet_id <= subnet_count
        if isinstance(subnet_id, int) and (known or mode is GenerationMode.POSITIVE):
            case.path_parameters = {**(case.path_parameters or {}), "subnet_id": served_subnet}
        try:
            response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=120)
            run.statuses[f"{operation.label} {response.status_code}"] += 1
        except FailureGroup as group:  # every check failure, kept to report them all
            for failure in group.exceptions:
                run.failures.setdefault(f"{label}: {failure.title}", f"{failure}\n{group}"[:1500])
        except Exception as exc:
            run.failures.setdefault(f"{label}: {type(exc).__name__}", str(exc)[:1500])

    return send


def test_schemathesis_finds_no_undocumented_answer(
    gateway_url: str,
    credentials: dict[str, dict[str, str]],
    served_subnet: int,
    deployment: Deployment,
) -> None:
    """As a keyed app developer on every operation, then as a signed-in wallet on key management
    (logout left out: it would end the session the run uses), then without credentials."""
    count = int(deployment.contract("SubnetRegistry").functions.subnetCount().call())
    started = time.monotonic()
    run = run_schemathesis(gateway_url, credentials["key"], MAX_EXAMPLES, served_subnet, count)
    keys_only = frozenset(
        label for label in _labels(gateway_url) if not label.split(" ", 1)[1].startswith("/v1/keys")
    )
    by_session = run_schemathesis(
        gateway_url, credentials["session"], MAX_EXAMPLES, served_subnet, count, keys_only
    )
    anonymous = run_schemathesis(gateway_url, {}, ANONYMOUS_EXAMPLES, served_subnet, count)
    for who, other in (("session", by_session), ("anonymous", anonymous)):
        run.cases += other.cases
        run.failures.update({f"({who}) {k}": v for k, v in other.failures.items()})
        run.statuses.update(Counter({f"({who}) {k}": n for k, n in other.statuses.items()}))
    elapsed_s = time.monotonic() - started
    print(f"schemathesis: {run.cases} cases, {len(run.failures)} failures, {elapsed_s:.1f} s")
    print("\n".join(f"  {key}: {n}" for key, n in sorted(run.statuses.items())))
    assert run.cases > 0
    assert not run.failures, "\n\n".join(f"{k}\n{v}" for k, v in sorted(run.failures.items()))


def _labels(url: str) -> list[str]:
    schema = schemathesis.openapi.from_url(url + "/schema/openapi.json")
    return [result.ok().label for result in schema.get_all_operations()]


def test_every_success_answer_matches_its_documented_schema(
    gateway_url: str, new_user: Callable[..., Any], served_subnet: int, world: World
) -> None:
    """The successes a keyed caller cannot reach by fuzzing (sign-in, keys, a paid call and its
    receipt, a context, a spending authorisation), checked against the document."""
    schema = schemathesis.openapi.from_url(gateway_url + "/schema/openapi.json")
    user = new_user()
    key = user.key.hex()

    def check(path: str, method: str, response: httpx.Response, status: int) -> httpx.Response:
        assert response.status_code == status, response.text
        schema[path][method].validate_response(response)  # raises FailureGroup on a mismatch
        return response

    with httpx.Client(base_url=gateway_url, timeout=120) as client:
        nonce = check("/v1/auth/nonce", "GET", client.get("/v1/auth/nonce"), 200).json()["nonce"]
        message = siwe_message(user.address, nonce)
        verified = client.post(
            "/v1/auth/verify", json={"message": message, "signature": sign(message, key)}
        )
        check("/v1/auth/verify", "POST", verified, 200)
        session = session_headers(str(verified.cookies["twopm_session"]))
        check("/v1/me", "GET", client.get("/v1/me", headers=session), 200)
        created = client.post("/v1/keys", json={"name": "ci", "subnets": [1]}, headers=session)
        key_id = check("/v1/keys", "POST", created, 201).json()["id"]
        check("/v1/keys", "GET", client.get("/v1/keys", headers=session), 200)
        revoked = client.delete(f"/v1/keys/{key_id}", headers=session)
        check("/v1/keys/{key_id}", "DELETE", revoked, 204)

        rows = {"rows": spector().rows(0, 3)}
        path = f"/v1/subnets/{served_subnet}/predict"
        predicted = client.post(path, json=rows, headers=session)
        check("/v1/subnets/{subnet_id}/predict", "POST", predicted, 200)
        receipt = client.get(f"/v1/receipts/{predicted.headers['x-receipt-id']}", headers=session)
        check("/v1/receipts/{receipt_id}", "GET", receipt, 200)

        context = ClientContext.create(DEFAULT_PARAMS, layout=Layout.ROW, n_features=3)
        uploaded = client.post(
            "/v1/he/contexts",
            content=context.public_bytes(),
            headers={**session, "content-type": "application/octet-stream"},
        )
        check("/v1/he/contexts", "POST", uploaded, 201)

        expiry = int(time.time()) + 3600
        signature = world.sign_cap(key, 10**16, expiry, 2)
        authorization = {
            "user": user.address,
            "max_total_spend_wei": str(10**16),
            "expiry": expiry,
            "nonce": 2,
            "signature": "0x" + signature.hex(),
        }
        submitted = client.post("/v1/spending-authorizations", json=authorization, headers=session)
        check("/v1/spending-authorizations", "POST", submitted, 201)
        check("/v1/subnets", "GET", client.get("/v1/subnets"), 200)
        check("/v1/config", "GET", client.get("/v1/config"), 200)
        check("/v1/auth/logout", "POST", client.post("/v1/auth/logout", headers=session), 204)
