from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import gateway
from core.cli import CliError
from gateway import ConfigurationError, GatewaySettings, RateTier
from gateway.cli import register


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="twopm")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


def test_the_public_surface_changes_only_on_purpose() -> None:
    assert sorted(gateway.__all__) == sorted(
        [
            "ApiKey",
            "BadRequest",
            "Billing",
            "Caller",
            "Charge",
            "ConfigurationError",
            "Conflict",
            "Forbidden",
            "GatewayError",
            "GatewaySettings",
            "InsufficientStake",
            "NotAuthenticated",
            "NotFound",
            "PaymentRequired",
            "RateLimited",
            "RateTier",
            "Receipt",
            "ServiceUnavailable",
            "Services",
            "SignInRejected",
            "UpstreamError",
            "content_hash",
            "create_app",
        ]
    )


def test_serve_refuses_a_certificate_without_a_key(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(CliError, match="--cert and --key"):
        _run(["gateway", "serve", "--cert", str(cert)])


def test_serve_refuses_a_tls_key_others_can_read(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("x")
    key.write_text("x")
    key.chmod(0o644)
    with pytest.raises(CliError, match=r"TLS key .* has mode 0644.*chmod 600"):
        _run(["gateway", "serve", "--cert", str(cert), "--key", str(key)])


def test_serve_refuses_a_missing_certificate_file(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="no such file"):
        _run(["gateway", "serve", "--cert", str(tmp_path / "a"), "--key", str(tmp_path / "b")])


def test_serve_refuses_a_malformed_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWOPM_GATEWAY_CHAIN_ID", "scroll")
    with pytest.raises(CliError, match="TWOPM_GATEWAY_CHAIN_ID"):
        _run(["gateway", "serve"])


def test_serve_refuses_a_contract_address_that_is_not_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TWOPM_GATEWAY_RPC_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("TWOPM_GATEWAY_QUEUE_PATH", str(tmp_path / "q.sqlite3"))
    monkeypatch.setenv(
        "TWOPM_GATEWAY_CONTRACTS",
        json.dumps({"StakingVault": "0x12", "SubnetRegistry": "x", "InferenceLedger": "y"}),
    )
    with pytest.raises(CliError, match="address"):
        _run(["gateway", "serve"])


def test_settings_prints_json_with_the_signer_secret_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWOPM_GATEWAY_SIGNER_SECRET", "deadbeef")
    monkeypatch.setenv("TWOPM_GATEWAY_TIERS", "a:0:1:2,b:5:3.5:10")
    assert _run(["gateway", "settings"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["signer_secret"] == "***" and shown["chain_id"] == 534351
    assert [t["name"] for t in shown["tiers"]] == ["a", "b"]


def test_settings_are_read_from_the_environment_once() -> None:
    s = GatewaySettings.from_env(
        {
            "TWOPM_GATEWAY_PUBLIC_URL": "https://gw.example:8443",
            "TWOPM_GATEWAY_COOKIE_SECURE": "false",
            "TWOPM_GATEWAY_STAKE_CACHE_TTL_S": "2.5",
            "TWOPM_GATEWAY_TIERS": "x:0:1:1",
        }
    )
    assert s.domain == "gw.example:8443" and s.origin == "https://gw.example:8443"
    assert s.cookie_secure is False and s.stake_cache_ttl_s == 2.5
    assert s.tiers == (RateTier("x", 0, 1.0, 1),)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TWOPM_GATEWAY_TIERS", "x:0:1"),
        ("TWOPM_GATEWAY_TIERS", "x:0:0:1"),
        ("TWOPM_GATEWAY_COOKIE_SECURE", "maybe"),
        ("TWOPM_GATEWAY_CONTRACTS", "[1]"),
        ("TWOPM_GATEWAY_NONCE_TTL_S", "soon"),
    ],
)
def test_malformed_settings_are_refused_with_the_variable_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError):
        GatewaySettings.from_env({name: value})


def test_a_misspelt_setting_is_refused_naming_the_closest_known_one() -> None:
    with pytest.raises(ConfigurationError) as caught:
        GatewaySettings.from_env({"TWOPM_GATEWAY_BATCH_MAX_RECIEPTS": "3"})
    assert str(caught.value).startswith("unknown setting: TWOPM_GATEWAY_BATCH_MAX_RECIEPTS")
    assert "did you mean TWOPM_GATEWAY_BATCH_MAX_RECEIPTS?" in str(caught.value)


def test_an_unknown_setting_with_no_close_name_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="unknown settings: TWOPM_GATEWAY_A, ") as caught:
        GatewaySettings.from_env({"TWOPM_GATEWAY_A": "1", "TWOPM_GATEWAY_WHATEVER": "2"})
    assert "did you mean" not in str(caught.value)


def test_gateway_commands_refuse_an_unknown_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWOPM_GATEWAY_BATCH_MAX_RECIEPTS", "3")
    with pytest.raises(CliError, match="did you mean TWOPM_GATEWAY_BATCH_MAX_RECEIPTS"):
        _run(["gateway", "settings"])


def test_a_missing_deployment_file_is_a_configuration_error(tmp_path: Path) -> None:
    s = GatewaySettings(deployment_file=tmp_path / "none.json")
    with pytest.raises(ConfigurationError, match="deployment file"):
        s.contract_addresses()


def test_a_deployment_file_supplies_contract_addresses(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"contracts": {"InferenceLedger": "0x" + "1" * 40}}))
    s = GatewaySettings(deployment_file=path, contracts={"StakingVault": "0x" + "2" * 40})
    assert s.contract_addresses() == {
        "InferenceLedger": "0x" + "1" * 40,
        "StakingVault": "0x" + "2" * 40,
    }
