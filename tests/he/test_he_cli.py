"""``twopm ckks``: keys, public context, encrypt and decrypt from files; one-line errors."""

import argparse
import json
import stat

import numpy as np
import pytest

from ckks import DEFAULT_PARAMS, ClientContext, Section, parse_context
from ckks.cli import register
from core.cli import CliError
from gateway.he import HeEvaluator, LinearModel, validate_public_context


def twopm(*argv):
    parser = argparse.ArgumentParser(prog="twopm")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["ckks", *map(str, argv)])
    return args.handler(args)


def test_params_prints_the_security_margin(capsys):
    assert twopm("params", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["total_bits"], info["max_bits_128"]) == (160, 218)


def test_keygen_public_encrypt_decrypt_round_trip(tmp_path, capsys):
    key, pub, csv, req, resp = (tmp_path / n for n in ("key", "pub", "rows.csv", "req", "resp"))
    assert twopm("keygen", "--layout", "row", "--features", "3", "--out", key) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert twopm("public", key, "--out", pub) == 0
    info = validate_public_context(pub.read_bytes(), DEFAULT_PARAMS)
    assert info.row_slots == 2
    csv.write_text("a,b,c\n1,2,3\n-1,0.5,0\n")
    assert twopm("encrypt", key, "--csv", csv, "--out", req) == 0
    model = LinearModel.from_arrays([0.5, -1.25, 2.0], 0.25)
    ev = HeEvaluator(DEFAULT_PARAMS)
    ev.add_context(pub.read_bytes())
    resp.write_bytes(ev.evaluate(req.read_bytes(), model, context_id=info.context_id).response)
    capsys.readouterr()
    assert twopm("decrypt", key, resp, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    expected = np.array([[1, 2, 3], [-1, 0.5, 0]]) @ np.array(model.weights) + 0.25
    assert np.abs(np.array(out["logits"]) - expected).max() < 1e-4


def test_encrypt_writes_the_compact_wire_when_asked(tmp_path):
    key, csv, fast, compact = (tmp_path / n for n in ("key", "rows.csv", "fast", "compact"))
    twopm("keygen", "--out", key)
    csv.write_text("1,2,3\n-1,0.5,0\n")
    assert twopm("encrypt", key, "--csv", csv, "--out", fast) == 0
    assert twopm("encrypt", key, "--csv", csv, "--out", compact, "--wire", "compact") == 0
    assert len(compact.read_bytes()) < 0.5 * len(fast.read_bytes())
    model = LinearModel.from_arrays([0.5, -1.25, 2.0], 0.25)
    result = HeEvaluator(DEFAULT_PARAMS).evaluate(compact.read_bytes(), model)
    logits = ClientContext.from_bytes(key.read_bytes()).decrypt_logits(result.response)
    assert np.allclose(logits, [4.25, -0.875], atol=1e-4)


def test_an_unknown_wire_is_refused_before_anything_is_written(tmp_path, capsys):
    key, csv, out = tmp_path / "key", tmp_path / "rows.csv", tmp_path / "out"
    twopm("keygen", "--out", key)
    csv.write_text("1,2,3\n")
    with pytest.raises(SystemExit) as exited:
        twopm("encrypt", key, "--csv", csv, "--out", out, "--wire", "zip")
    assert exited.value.code == 2 and "invalid choice: 'zip'" in capsys.readouterr().err
    assert not out.exists()


def test_keygen_refuses_to_overwrite_a_key_file(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"old")
    with pytest.raises(CliError, match="refusing to overwrite"):
        twopm("keygen", "--out", key)


def test_keygen_row_layout_without_features_is_a_one_line_error(tmp_path):
    with pytest.raises(CliError, match="features"):
        twopm("keygen", "--layout", "row", "--out", tmp_path / "key")


def test_a_key_file_others_can_read_is_refused(tmp_path):
    key = tmp_path / "key"
    twopm("keygen", "--out", key)
    key.chmod(0o640)
    with pytest.raises(CliError, match=r"mode 0640.*chmod 600"):
        twopm("public", key, "--out", tmp_path / "pub")


def test_a_public_context_is_not_accepted_as_a_key_file(tmp_path):
    key, pub = tmp_path / "key", tmp_path / "pub"
    twopm("keygen", "--out", key)
    twopm("public", key, "--out", pub)
    assert Section.SECRET_KEY not in parse_context(pub.read_bytes()).sections
    pub.chmod(0o600)
    with pytest.raises(CliError, match="no secret key"):
        twopm("public", pub, "--out", tmp_path / "again")


def test_encrypt_rejects_a_csv_that_is_not_numbers(tmp_path):
    key, csv = tmp_path / "key", tmp_path / "rows.csv"
    twopm("keygen", "--out", key)
    csv.write_text("a,b\nx,y\n")
    with pytest.raises(CliError, match="not a CSV of numbers"):
        twopm("encrypt", key, "--csv", csv, "--out", tmp_path / "req")
    with pytest.raises(CliError, match="cannot read"):
        twopm("encrypt", key, "--csv", tmp_path / "missing.csv", "--out", tmp_path / "req")


def test_decrypt_rejects_a_file_that_is_not_a_response(tmp_path):
    key, junk = tmp_path / "key", tmp_path / "junk"
    twopm("keygen", "--out", key)
    junk.write_bytes(b"not a response")
    with pytest.raises(CliError, match=r"bad magic|shorter"):
        twopm("decrypt", key, junk)
