"""The one rule for secret files (core.secrets) and the one loader of a user's key (contracts.keys).

Every part that reads a key, a password or a keystore goes through these two, so their refusals are
tested once here; the parts' own tests check that each translates the error into its own type.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from eth_account import Account

from contracts.keys import KeyLoadError, load_key_file, load_keystore
from core.secrets import PrivateFileError, check_private_file, read_private_file

KEY = "0x" + "11" * 32


def _private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_files_are_read(tmp_path: Path, mode: int) -> None:
    path = _private(tmp_path / "pw", "secret\n", mode)
    assert check_private_file(path, "password file") == path
    assert read_private_file(path, "password file") == "secret\n"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_group_or_other_bits_are_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    path = _private(tmp_path / "pw", "secret", mode)
    with pytest.raises(PrivateFileError, match=rf"mode {mode:04o}.*chmod 600 {path}"):
        read_private_file(path, "password file")


def test_missing_files_and_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PrivateFileError, match="cannot read key file"):
        check_private_file(tmp_path / "absent", "key file")
    with pytest.raises(PrivateFileError, match="not a regular file"):
        check_private_file(tmp_path, "key file")


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_file_of_another_user_is_refused_even_at_0600(tmp_path: Path) -> None:
    path = _private(tmp_path / "key", KEY)
    os.chown(path, 65534, 65534)  # nobody: could rewrite the key under us
    with pytest.raises(PrivateFileError, match="belongs to another user"):
        check_private_file(path, "key file")


def test_a_key_file_loads_and_a_bad_one_is_refused_without_echoing_it(tmp_path: Path) -> None:
    good = _private(tmp_path / "key", KEY + "\n")
    assert load_key_file(good).address == Account.from_key(KEY).address
    typo = _private(tmp_path / "typo", KEY[:-1] + "z")
    with pytest.raises(KeyLoadError, match="does not hold a valid private key") as caught:
        load_key_file(typo)
    assert KEY[4:] not in str(caught.value)
    loose = _private(tmp_path / "loose", KEY, 0o644)
    with pytest.raises(KeyLoadError, match="chmod 600"):
        load_key_file(loose)


def test_a_keystore_decrypts_from_each_password_source_and_refuses_the_rest(
    tmp_path: Path,
) -> None:
    account = Account.from_key(KEY)
    keystore = tmp_path / "ks.json"
    keystore.write_text(json.dumps(Account.encrypt(KEY, "pw", iterations=2)))
    assert load_keystore(keystore, password="pw").address == account.address
    pw_file = _private(tmp_path / "pw", "pw\nignored second line\n")
    assert load_keystore(keystore, password_file=pw_file).address == account.address
    assert load_keystore(keystore, prompt=lambda _: "pw").address == account.address

    with pytest.raises(KeyLoadError, match=f"wrong password for keystore {keystore}"):
        load_keystore(keystore, password="nope")
    with pytest.raises(KeyLoadError, match="needs a password"):
        load_keystore(keystore, prompt=None)
    with pytest.raises(KeyLoadError, match="chmod 600"):
        load_keystore(keystore, password_file=_private(tmp_path / "pw2", "pw", 0o644))
    with pytest.raises(KeyLoadError, match="cannot read keystore"):
        load_keystore(tmp_path / "absent.json", password="pw")
    not_json = _private(tmp_path / "bad.json", "{not json")
    with pytest.raises(KeyLoadError, match="is not a JSON keystore"):
        load_keystore(not_json, password="pw")
    not_keystore = _private(tmp_path / "other.json", '{"version": 3}')
    with pytest.raises(KeyLoadError, match="is not a usable keystore"):
        load_keystore(not_keystore, password="pw")
