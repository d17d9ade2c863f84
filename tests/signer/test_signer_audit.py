"""The hash-chained, operator-signed audit log and its verification."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from signer_support import SignerProcess, ledger_tx

from contracts.deploy import Deployment
from signer._audit import (
    GENESIS,
    AuditHead,
    AuditLog,
    entry_hash,
    signable_entry,
    verify_audit_log,
)
from signer.cli import main


def write_log(path: Path, account: LocalAccount, count: int = 5) -> AuditHead:
    def sign(digest: str) -> str:
        return "0x" + bytes(account.sign_message(signable_entry(digest)).signature).hex()

    log = AuditLog(path, AuditHead(0, GENESIS), sign)
    for i in range(count):
        log.append({"event": "sign_transaction", "outcome": "signed", "nonce": i})
    log.close()
    return log.head


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


@pytest.fixture
def operator() -> LocalAccount:
    account: LocalAccount = Account.create()
    return account


def test_an_intact_log_verifies_with_the_operators_signatures(
    tmp_path: Path, operator: LocalAccount
) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path, operator)
    report = verify_audit_log(path, expected_head=head, address=operator.address)
    assert report.ok
    assert report.entries == 5
    assert report.head == head


def test_verify_catches_an_edited_entry_and_names_its_line(
    tmp_path: Path, operator: LocalAccount
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, operator)
    rows = lines(path)
    rows[2] = rows[2].replace('"nonce":2', '"nonce":7')
    path.write_text("".join(rows))
    report = verify_audit_log(path)
    assert not report.ok
    assert report.bad_line == 3
    assert "edited" in (report.problem or "")


def test_verify_catches_a_removed_entry(tmp_path: Path, operator: LocalAccount) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, operator)
    rows = lines(path)
    del rows[1]
    path.write_text("".join(rows))
    report = verify_audit_log(path)
    assert (report.ok, report.bad_line) == (False, 2)
    assert "removed" in (report.problem or "")


def test_verify_catches_reordered_entries(tmp_path: Path, operator: LocalAccount) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, operator)
    rows = lines(path)
    rows[3], rows[4] = rows[4], rows[3]
    path.write_text("".join(rows))
    report = verify_audit_log(path)
    assert (report.ok, report.bad_line) == (False, 4)


def test_verify_catches_a_forged_entry_with_a_correct_hash(
    tmp_path: Path, operator: LocalAccount
) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path, operator)
    forged: dict[str, Any] = {
        "event": "sign_transaction",
        "outcome": "refused",
        "seq": 6,
        "prev": head.hash,
    }
    forged["hash"] = entry_hash(forged)
    forger: LocalAccount = Account.create()
    forged["sig"] = (
        "0x" + bytes(forger.sign_message(signable_entry(forged["hash"])).signature).hex()
    )
    with path.open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
    assert verify_audit_log(path).ok  # the bare chain cannot tell ...
    report = verify_audit_log(path, address=operator.address)  # ... the signatures can
    assert (report.ok, report.bad_line) == (False, 6)
    assert "forged" in (report.problem or "")


def test_verify_catches_entries_cut_off_the_end_using_the_database_head(
    tmp_path: Path, operator: LocalAccount
) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path, operator)
    path.write_text("".join(lines(path)[:3]))
    assert verify_audit_log(path).ok
    report = verify_audit_log(path, expected_head=head)
    assert not report.ok
    assert "cut off" in (report.problem or "")


def test_verify_reports_a_line_that_is_not_json(tmp_path: Path, operator: LocalAccount) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, operator)
    with path.open("a") as handle:
        handle.write("{torn\n")
    report = verify_audit_log(path)
    assert (report.ok, report.bad_line) == (False, 6)


def test_every_request_of_a_running_signer_is_in_its_signed_chain(
    signer: SignerProcess, deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    with signer.client() as client:
        client.sign_transaction(ledger_tx(deployment), "audit-chain-0001")
    before = len(signer.audit_entries())
    with signer.client() as client:
        client.address()
    assert len(signer.audit_entries()) == before + 1
    code = main(["audit", "verify", "--state-dir", str(signer.state_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"all signed by {signer.address}" in out
    assert "matches the database head" in out


def test_audit_verify_names_the_first_bad_line_and_exits_non_zero(
    make_signer: Callable[..., SignerProcess],
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signer = make_signer()
    with signer.client() as client:
        client.sign_transaction(ledger_tx(deployment), "audit-tamper-0001")
        client.sign_transaction(ledger_tx(deployment), "audit-tamper-0002")
    assert signer.stop() == 0
    rows = lines(signer.audit_path)
    rows[1] = rows[1].replace('"outcome":"signed"', '"outcome":"refused"')
    assert rows[1] != lines(signer.audit_path)[1]
    signer.audit_path.write_text("".join(rows))

    code = main(["audit", "verify", "--state-dir", str(signer.state_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "line 2" in err

    with pytest.raises(RuntimeError, match="fails verification at line 2"):
        signer.start()


def test_an_entry_whose_transaction_never_committed_is_marked_at_the_next_start(
    tmp_path: Path, operator: LocalAccount
) -> None:
    import time

    from signer._store import Store

    db, log = tmp_path / "signer.db", tmp_path / "audit.jsonl"
    store = Store(db, log, operator, time.time)
    store.append_audit({"event": "address", "outcome": "ok"})
    with pytest.raises(RuntimeError), store.transaction():
        store.take_nonce()
        store.append_audit_in_transaction({"event": "sign_transaction", "outcome": "signed"})
        raise RuntimeError("killed before the commit")
    store.close()
    assert verify_audit_log(log, expected_head=AuditHead(1, lines_hash(log, 0))).ok

    store = Store(db, log, operator, time.time)  # the next start
    assert store.next_nonce() == 0  # the rolled-back signature did not take a nonce
    last = json.loads(lines(log)[-1])
    assert (last["event"], last["rolled_back_seqs"]) == ("recovery", [2])
    assert verify_audit_log(log, expected_head=store.audit_head(), address=operator.address).ok
    store.close()


def lines_hash(path: Path, index: int) -> str:
    return str(json.loads(lines(path)[index])["hash"])
