from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import siwe
from eth_account import Account

from clients.sdk import InvalidInput, Wallet, WalletError
from contracts.eip712 import sign_typed_data, spending_authorization

KEY = "0x" + "11" * 32
FAST_SCRYPT = 2**4  # keystore work factor for tests only


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    return Wallet.from_key(KEY).to_keystore(
        tmp_path / "key.json", "hunter2", iterations=FAST_SCRYPT
    )


def test_a_wallet_from_a_key_has_that_keys_address() -> None:
    assert Wallet.from_key(KEY).address == Account.from_key(KEY).address


def test_a_malformed_key_is_a_wallet_error() -> None:
    with pytest.raises(WalletError, match="not a valid private key"):
        Wallet.from_key("0x1234")


def test_the_repr_never_shows_the_key() -> None:
    wallet = Wallet.from_key(KEY)
    assert "11" * 32 not in repr(wallet) and wallet.address in repr(wallet)


def test_a_keystore_opens_with_its_password(keystore: Path) -> None:
    assert (
        Wallet.from_keystore(keystore, password="hunter2").address == Wallet.from_key(KEY).address
    )


def test_a_keystore_reads_its_password_from_the_first_line_of_a_file(
    keystore: Path, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text("hunter2\nignored\n")
    (tmp_path / "pw").chmod(0o600)
    wallet = Wallet.from_keystore(keystore, password_file=tmp_path / "pw")
    assert wallet.address == Account.from_key(KEY).address


def test_a_keystore_asks_for_its_password_when_none_is_given(keystore: Path) -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "hunter2"

    assert Wallet.from_keystore(keystore, prompt=prompt).address == Account.from_key(KEY).address
    assert asked == ["Password for key.json: "]


def test_a_wrong_keystore_password_is_a_wallet_error(keystore: Path) -> None:
    with pytest.raises(WalletError, match="wrong password"):
        Wallet.from_keystore(keystore, password="hunter3")


def test_a_keystore_without_a_password_and_no_prompt_is_a_wallet_error(keystore: Path) -> None:
    with pytest.raises(WalletError, match="needs a password"):
        Wallet.from_keystore(keystore, prompt=None)


def test_a_missing_keystore_is_a_wallet_error(tmp_path: Path) -> None:
    with pytest.raises(WalletError, match="cannot read keystore"):
        Wallet.from_keystore(tmp_path / "absent.json", password="x")


def test_a_file_that_is_not_a_keystore_is_a_wallet_error(tmp_path: Path) -> None:
    (tmp_path / "k.json").write_text("not json")
    with pytest.raises(WalletError, match="not a JSON keystore"):
        Wallet.from_keystore(tmp_path / "k.json", password="x")
    (tmp_path / "k.json").write_text(json.dumps({"crypto": {}}))
    with pytest.raises(WalletError, match="not a usable keystore"):
        Wallet.from_keystore(tmp_path / "k.json", password="x")


def test_a_missing_password_file_is_a_wallet_error(keystore: Path, tmp_path: Path) -> None:
    with pytest.raises(WalletError, match="cannot read password file"):
        Wallet.from_keystore(keystore, password_file=tmp_path / "absent")


def test_a_keystore_is_written_for_its_owner_only_and_never_overwritten(keystore: Path) -> None:
    assert keystore.stat().st_mode & 0o777 == 0o600
    with pytest.raises(WalletError, match="cannot create keystore"):
        Wallet.from_key(KEY).to_keystore(keystore, "again", iterations=FAST_SCRYPT)


def test_a_signed_siwe_message_verifies_with_the_siwe_library() -> None:
    wallet = Wallet.from_key(KEY)
    now = datetime.now(UTC)
    message, signature = wallet.sign_siwe(
        domain="gw.test",
        uri="https://gw.test",
        chain_id=534351,
        nonce="abcdefgh1234",
        issued_at=now,
        expires_in_s=60,
    )
    parsed = siwe.SiweMessage.from_message(message)
    assert parsed.address == wallet.address and parsed.chain_id == 534351
    assert parsed.expiration_time is not None
    parsed.verify(
        signature, domain="gw.test", nonce="abcdefgh1234", timestamp=now + timedelta(seconds=1)
    )


def test_a_siwe_message_with_a_short_nonce_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="SIWE"):
        Wallet.from_key(KEY).siwe_message(
            domain="gw.test", uri="https://gw.test", chain_id=1, nonce="short"
        )


def test_typed_data_signatures_match_the_contracts_helper() -> None:
    typed = spending_authorization(
        chain_id=534351,
        ledger="0x" + "22" * 20,
        user=Account.from_key(KEY).address,
        max_total_spend_wei=10**18,
        expiry=2**40,
        nonce=1,
    )
    assert Wallet.from_key(KEY).sign_typed_data(typed) == sign_typed_data(KEY, typed)


def test_malformed_typed_data_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="EIP-712"):
        Wallet.from_key(KEY).sign_typed_data({"types": {}, "message": {}})


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_keystore_refuses_a_password_file_others_can_read_or_write(
    keystore: Path, tmp_path: Path, mode: int
) -> None:
    password_file = tmp_path / "pw"
    password_file.write_text("hunter2\n")
    password_file.chmod(mode)
    with pytest.raises(WalletError, match=f"mode {mode:04o}.*chmod 600"):
        Wallet.from_keystore(keystore, password_file=password_file)


def test_a_key_file_loads_when_only_its_owner_can_read_it(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    assert Wallet.from_key_file(key_file).address == Account.from_key(KEY).address
    key_file.chmod(0o400)
    assert Wallet.from_key_file(key_file).address == Account.from_key(KEY).address


def test_a_key_file_is_refused_when_others_can_read_it_or_it_holds_no_key(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    key_file.chmod(0o644)
    with pytest.raises(WalletError, match="chmod 600"):
        Wallet.from_key_file(key_file)
    key_file.write_text("0xnothex")
    key_file.chmod(0o600)
    with pytest.raises(WalletError, match="does not hold a valid private key"):
        Wallet.from_key_file(key_file)
    with pytest.raises(WalletError, match="cannot read key file"):
        Wallet.from_key_file(tmp_path / "absent")
