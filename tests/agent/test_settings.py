"""Settings: flags and WORLDLAND_* variables into one validated model; flags win; the key stays secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from worldland_node.cli import build_parser, double_dashed, load_settings
from worldland_node.settings import AgentSettings, parse_port_range

KEY = "0x" + "11" * 32


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("WORLDLAND_"):
            monkeypatch.delenv(name)


def test_flags_give_every_setting(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    settings = load_settings(
        [
            "--api", "http://127.0.0.1:3000/api/v1/",
            "--host", "203.0.113.7",
            "--private-key-file", str(key_file),
            "--state-dir", str(tmp_path / "state"),
            "--gpu-type", "NVIDIA GeForce RTX 4090", "--gpu-count", "4", "--gpu-memory-gb", "24",
            "--price-per-hour", "0.75",
            "--port-range", "30000-30099",
            "--region", "eu-west",
            "--heartbeat-interval", "15",
            "--siwe-domain", "localhost:3000",
            "--no-install-sshd",
        ]
    )  # fmt: skip
    assert settings.api == "http://127.0.0.1:3000"  # /api/v1 is added per route
    assert settings.host == "203.0.113.7"
    assert settings.wallet_key() == KEY
    assert (settings.gpu_type, settings.gpu_count, settings.gpu_memory_gb) == ("NVIDIA GeForce RTX 4090", 4, 24)
    assert settings.price_per_hour == 0.75
    assert settings.ports == (30000, 30099)
    assert settings.region == "eu-west"
    assert settings.heartbeat_interval == 15
    assert settings.siwe_domain == "localhost:3000"
    assert settings.install_sshd is False


def test_environment_gives_settings_and_flags_win(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLDLAND_API", "https://api.example.org")
    monkeypatch.setenv("WORLDLAND_HOST", "198.51.100.1")
    monkeypatch.setenv("WORLDLAND_PRIVATE_KEY", KEY)
    monkeypatch.setenv("WORLDLAND_GPU_COUNT", "2")
    monkeypatch.setenv("WORLDLAND_PORT_RANGE", "40000-40010")
    monkeypatch.setenv("WORLDLAND_INSTALL_SSHD", "false")
    settings = load_settings(["--gpu-count", "8"])
    assert settings.api == "https://api.example.org"
    assert settings.host == "198.51.100.1"
    assert settings.wallet_key() == KEY
    assert settings.gpu_count == 8  # the flag wins over WORLDLAND_GPU_COUNT
    assert settings.ports == (40000, 40010)
    assert settings.install_sshd is False


def test_the_key_never_shows_in_the_settings_repr() -> None:
    settings = AgentSettings(api="http://x", host="127.0.0.1", private_key=KEY)
    assert KEY not in repr(settings)
    assert KEY[2:] not in str(settings.model_dump())


def test_missing_key_and_bad_values_exit_with_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_settings(["--api", "http://x", "--host", "127.0.0.1"])
    assert "--private-key-file" in str(exited.value)
    with pytest.raises(SystemExit) as exited:
        load_settings(["--api", "http://x", "--host", "127.0.0.1", "--private-key", KEY, "--port-range", "99-10"])
    assert "port range" in str(exited.value)
    assert KEY not in str(exited.value)


def test_every_field_has_a_flag_and_a_description() -> None:
    help_text = build_parser().format_help()
    for name, field in AgentSettings.model_fields.items():
        assert field.description, name
        assert "--" + name.replace("_", "-") in help_text
        assert f"WORLDLAND_{name.upper()}" in help_text


@pytest.mark.parametrize(("text", "expected"), [("30000-30999", (30000, 30999)), (" 2000 - 2000 ", (2000, 2000))])
def test_port_ranges_parse(text: str, expected: tuple[int, int]) -> None:
    assert parse_port_range(text) == expected


@pytest.mark.parametrize("text", ["30000", "10-20", "3000-2000", "30000-70000", "a-b"])
def test_bad_port_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_port_range(text)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], True),
        (["--enable-mining"], True),
        (["--enable-mining=false"], False),  # seed 004's spelling
        (["--enable-mining", "true"], True),
        (["--no-enable-mining"], False),
    ],
)
def test_mining_can_be_turned_off_the_seed_way(flags: list[str], expected: bool) -> None:
    base = ["--api", "http://127.0.0.1:3000", "--host", "203.0.113.7", "--private-key", KEY]
    settings = load_settings([*base, "--mining-image", "localhost/miner:1", *flags])
    assert settings.enable_mining is expected
    assert settings.mining_image == "localhost/miner:1"
    assert settings.mining_data_dir == Path("/data/worldland")


SEED_COMMAND_LINE = [
    # Seed 004's README, as its Go binary took it (single-dash flags), plus its GPU overrides and cert dir
    "-hub", "203.0.113.1:8443",
    "-hub-http", "http://203.0.113.1:8080",
    "-host", "203.0.113.7",
    "-private-key", KEY,
    "-siwe-domain", "worldland.example:3000",
    "-enable-mining=true",
    "-mining-image", "mingeyom/worldland-mio:latest",
    "-mining-data-dir", "/data/worldland",
    "-gpu-type", "Tesla T4",
    "-memory-gb", "15",
    "-cert-dir", "/tmp/worldland-certs",
    "-api-port", "8444",
]  # fmt: skip


def test_a_seed_command_line_keeps_its_meaning() -> None:
    notes: list[str] = []
    settings = load_settings(SEED_COMMAND_LINE, notes)
    assert settings.api == "http://203.0.113.1:8080"  # -hub-http: the REST API
    assert settings.host == "203.0.113.7"
    assert settings.wallet_key() == KEY
    assert settings.siwe_domain == "worldland.example:3000"
    assert settings.enable_mining is True
    assert settings.gpu_type == "Tesla T4"
    # The seed's -memory-gb is one GPU's memory, never the host memory offered to rentals
    assert settings.gpu_memory_gb == 15
    assert settings.host_memory_gb is None
    assert settings.state_dir == Path("/tmp/worldland-certs")
    # And what has no use here is said, not silently dropped
    said = "\n".join(notes)
    assert "--hub (seed 004) ignored" in said
    assert "--api-port (seed 004) ignored" in said
    assert "--memory-gb (seed 004) read as --gpu-memory-gb" in said


def test_host_memory_has_its_own_flag() -> None:
    base = ["--api", "http://x", "--host", "127.0.0.1", "--private-key", KEY]
    settings = load_settings([*base, "--host-memory-gb", "64", "--memory-gb", "24"])
    assert (settings.host_memory_gb, settings.gpu_memory_gb) == (64, 24)


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--price-per-sec", "1000000000"], "--price-per-hour"),  # wei per second: a different unit
        (["--memory-gb", "24", "--gpu-memory-gb", "16"], "disagree"),
    ],
)
def test_seed_flags_that_would_be_misread_are_refused(flags: list[str], said: str) -> None:
    base = ["--api", "http://x", "--host", "127.0.0.1", "--private-key", KEY]
    with pytest.raises(SystemExit) as exited:
        load_settings([*base, *flags])
    assert said in str(exited.value)


def test_the_seed_hub_alone_says_what_to_give_instead() -> None:
    with pytest.raises(SystemExit) as exited:
        load_settings(["-hub", "203.0.113.1:8443", "-host", "203.0.113.7", "-private-key", KEY])
    assert "--api" in str(exited.value)
    assert "-hub-http" in str(exited.value)


def test_the_old_ambiguous_memory_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDLAND_MEMORY_GB", "64")
    with pytest.raises(SystemExit) as exited:
        load_settings(["--api", "http://x", "--host", "127.0.0.1", "--private-key", KEY])
    assert "WORLDLAND_HOST_MEMORY_GB" in str(exited.value)


def test_single_dash_is_only_added_to_known_flags() -> None:
    assert double_dashed(["-host", "h", "-enable-mining=false", "-x", "--", "-host"]) == [
        "--host", "h", "--enable-mining=false", "-x", "--", "-host",
    ]  # fmt: skip
    assert double_dashed(["--price-per-hour", "-1"]) == ["--price-per-hour", "-1"]
