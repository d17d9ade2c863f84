"""The holders' side of chunked proof of training in ``twopm up --chunked-training-proofs``: a
30-feature holder commits the last link of its chunk chain, then proves and submits every chunk of the
CSV its SuperNode trained on, and opens its running sums (real anvil, real snarkjs; 8 rows, so 4
chunks of 2)."""

from __future__ import annotations

import numpy as np
import pytest

from contracts import Anvil, Deployment, Transactor
from stack._training_proofs import HolderCommitment, _encode, _root, prove_after_publication
from trainer import JobConfig, load_dataset, run_in_process
from trainer.data import write_csv
from zk import commit_data, record_model_verifier, training_chunk_verifier_name, verify_training

HOLDER, OWNER = 7, 3


@pytest.mark.slow
def test_a_30_feature_holder_commits_its_chain_and_proves_its_csv_in_chunks(
    anvil: Anvil, deployment: Deployment, chain_snapshot: None, tmp_path
) -> None:
    data = load_dataset("breast-cancer")
    part = data.take(np.arange(8))
    csv = tmp_path / "node-0.csv"
    write_csv(part, csv)
    result = run_in_process(
        [part], JobConfig(tuple(data.feature_names), data.label, n_nodes=1, l2_c=1.0)
    )
    weights, intercept = [float(c) for c in result.coef], float(result.intercept)

    w3 = anvil.w3
    account = anvil.accounts[HOLDER]
    tx = Transactor(w3, account.private_key)
    nodes = deployment.contract("NodeRegistry")
    if not nodes.functions.isRegistered(account.address).call():
        tx.transact(nodes.functions.register("cancer-holder", "http://127.0.0.1/h"))
    salt = 4242
    (tmp_path / "holder-0.salt").write_text(f"{salt}\n")
    rows = _encode(part.x.tolist(), part.y.tolist(), 30)
    root = _root(rows, salt, chunked=True)
    holder = HolderCommitment(
        account.address,
        account.private_key,
        csv,
        tmp_path / "holder-0.salt",
        commit_data(tx, deployment, root),
        root,
    )
    owner = Transactor(w3, anvil.accounts[OWNER].private_key)
    registry = deployment.contract("SubnetRegistry")
    receipt = owner.transact(registry.functions.createSubnet("cancer-stack", 10**12, 0, 1000))
    sid = int(registry.events.SubnetCreated().process_receipt(receipt)[0]["args"]["subnetId"])
    owner.transact(
        registry.functions.publishModel(
            sid, b"\x01" * 32, "file:///nowhere", b"\x02" * 32, b"\x03" * 32, [account.address],
            [10_000],
        )
    )  # fmt: skip
    record_model_verifier(
        deployment=deployment,
        deployer=Transactor(w3, anvil.accounts[5].private_key),
        owner=owner,
        subnet_id=sid,
        version=1,
        weights=weights,
        intercept=intercept,
    )

    done = prove_after_publication(
        w3,
        deployment,
        [holder],
        subnet_id=sid,
        version=1,
        feature_names=list(data.feature_names),
        label=data.label,
        weights=weights,
        intercept=intercept,
    )
    assert [d["proofs"] for d in done] == [4] and done[0]["submit_gas"] > 0
    _, complete = (
        deployment.contract(training_chunk_verifier_name(30))
        .functions.chainOf(sid, 1, account.address)
        .call()
    )
    assert complete
    found = verify_training(deployment, sid, weights=weights, l2_c=1.0)
    assert found.verified, found.problems
    assert found.holders[0]["chunks"] == 4 and found.n_rows == 8
