"""`edge-agent check-config`: broken configs give `PATH: key.path: message` lines and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_config
from tests.support.configs import REPO
from tests.support.proc import run_cli


def check(tmp_path: Path, text: str, capsys) -> tuple[int, list[str]]:
    p = tmp_path / "booth.toml"
    p.write_text(text)
    code = main(["check-config", str(p)])
    err = capsys.readouterr().err
    return code, [line.replace(str(p), "PATH") for line in err.splitlines()]


MINIMAL = """
[device]
id = "booth-01"
state_dir = "state"
[platforms.easy]
kind = "easyai"
base_url = "http://127.0.0.1:3001/"
api_key_env = "EDGE_AGENT_TEST_KEY"
[[profiles]]
name = "cartoon"
platform = "easy"
endpoint = "images.edits"
model = "cartoon_v2"
"""

CASES = [
    ("unknown key with a hint", MINIMAL + '[camera]\ndriver = "synthetic"\nwidht = 640\n',
     ["PATH: camera.widht: unknown key (did you mean 'width'?)"]),
    ("unknown section", MINIMAL + "[camra]\nx = 1\n", ["PATH: camra: unknown key (did you mean 'camera'?)"]),
    ("unknown platform key", MINIMAL.replace('kind = "easyai"', 'kind = "easyai"\npol_interval_s = 1'),
     ["PATH: platforms.easy.pol_interval_s: unknown key (did you mean 'poll_interval_s'?)"]),
    ("unknown key in a table array", MINIMAL.replace('model = "cartoon_v2"', 'modle = "x"\nmodel = "y"'),
     ["PATH: profiles[0].modle: unknown key (did you mean 'model'?)"]),
    ("wrong type", MINIMAL + '[upload]\nmax_edge = "big"\n', ["PATH: upload.max_edge: expected an integer, got 'big'"]),
    ("out of range", MINIMAL + "[upload]\njpeg_quality = 150\n",
     ["PATH: upload.jpeg_quality: must be <= 100, got 150"]),
    ("bad device id", MINIMAL.replace('id = "booth-01"', 'id = "Booth 1"'),
     ["PATH: device.id: 'Booth 1' does not match ^[a-z0-9_-]+$"]),
    ("unknown camera driver", MINIMAL + '[camera]\ndriver = "webcam"\n',
     ["PATH: camera.driver: unknown value 'webcam'; expected one of 'synthetic', 'file', 'opencv', 'picamera2'"]),
    ("missing file camera path", MINIMAL + '[camera]\ndriver = "file"\npath = "nope.jpg"\n',
     ["PATH: camera.path: no such file or folder: {dir}/nope.jpg"]),
    ("missing key file", MINIMAL.replace('api_key_env = "EDGE_AGENT_TEST_KEY"', 'api_key_file = "easyai.key"'),
     ["PATH: platforms.easy.api_key_file: no such file: {dir}/easyai.key"]),
    ("unset key env", MINIMAL.replace("EDGE_AGENT_TEST_KEY", "EDGE_AGENT_UNSET_VAR"),
     ["PATH: platforms.easy.api_key_env: environment variable EDGE_AGENT_UNSET_VAR is not set"]),
    ("key pasted into api_key_env", MINIMAL.replace("EDGE_AGENT_TEST_KEY", "sk-live-0123-abcd"),
     ["PATH: platforms.easy.api_key_env: must be the name of an environment variable (like EASYAI_API_KEY)"]),
    ("bad pin", MINIMAL + "[[buttons]]\npin = 40\n", ["PATH: buttons[0].pin: BCM pin 40 does not exist (0-27)"]),
    ("pin used twice", MINIMAL + "[[buttons]]\npin = 17\n[indicators]\nready_led = 17\n",
     ["PATH: indicators.ready_led: pin 17 is already used by buttons[0].pin"]),
    ("unknown platform", MINIMAL.replace('platform = "easy"', 'platform = "eazy"'),
     ["PATH: profiles[0].platform: unknown platform 'eazy' (did you mean 'easy'?)"]),
    ("endpoint of the other platform", MINIMAL.replace("images.edits", "apps.run"),
     ["PATH: profiles[0].endpoint: 'apps.run' is not an endpoint of a 'easyai' platform; "
      "expected one of images.edits, ai.generations"]),
    ("unknown button profile", MINIMAL + '[[buttons]]\npin = 17\nprofile = "zzz"\n',
     ["PATH: buttons[0].profile: unknown profile 'zzz'"]),
    ("public listen without token", MINIMAL + '[http]\nlisten = "0.0.0.0:8080"\n',
     ["PATH: http.listen: 0.0.0.0 is not loopback: set http.token_file so the API needs a token"]),
    ("remote params may not name images", MINIMAL.replace('model = "cartoon_v2"',
                                                          'model = "m"\nremote_params = ["image"]'),
     ["PATH: profiles[0].remote_params: 'image' can never be set remotely (paths and URLs)"]),
    ("haiyi app without workflow id", MINIMAL + '[platforms.h]\nkind = "haiyi"\nbase_url = "http://h"\n'
     'api_key_env = "EDGE_AGENT_TEST_KEY"\n[[profiles]]\nname = "t"\nplatform = "h"\nendpoint = "apps.run"\n',
     ["PATH: profiles[1].workflow_id: missing required key for endpoint apps.run"]),
    ("missing required key", MINIMAL.replace('endpoint = "images.edits"\n', ""),
     ["PATH: profiles[0].endpoint: missing required key"]),
    ("TOML syntax", "[device\nid = 1\n",
     ["PATH: TOML syntax error: Expected ']' at the end of a table declaration (at line 1, column 8)"]),
    ("no profiles", MINIMAL.split("[[profiles]]")[0], ["PATH: profiles: at least one [[profiles]] entry is needed"]),
]


@pytest.mark.parametrize("name,text,expected", CASES, ids=[c[0] for c in CASES])
def test_broken_configs(tmp_path: Path, capsys, name: str, text: str, expected: list[str]) -> None:
    code, lines = check(tmp_path, text, capsys)
    assert code == 2
    assert lines == [e.format(dir=tmp_path) for e in expected]


def test_several_errors_reported_at_once(tmp_path: Path, capsys) -> None:
    text = MINIMAL.replace('id = "booth-01"', 'id = "Booth"') + '[upload]\nmax_edge = "x"\n[queue]\nmax_in_flite = 2\n'
    code, lines = check(tmp_path, text, capsys)
    assert code == 2
    assert lines == [
        "PATH: device.id: 'Booth' does not match ^[a-z0-9_-]+$",
        "PATH: upload.max_edge: expected an integer, got 'x'",
        "PATH: queue.max_in_flite: unknown key (did you mean 'max_in_flight'?)",
    ]


def test_missing_file_via_console_script(tmp_path: Path) -> None:
    r = run_cli("check-config", str(tmp_path / "nope.toml"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"{tmp_path / 'nope.toml'}: config file not found"


def test_valid_config_ok_and_inline_key_warns(tmp_path: Path, capsys) -> None:
    code, _ = check(tmp_path, MINIMAL, capsys)
    assert code == 0
    text = MINIMAL.replace('api_key_env = "EDGE_AGENT_TEST_KEY"', 'api_key = "sk-inline-secret-1"')
    p = tmp_path / "inline.toml"
    p.write_text(text)
    assert main(["check-config", str(p)]) == 0
    out = capsys.readouterr()
    assert "platforms.easy.api_key: a secret written in the config file; prefer api_key_file" in out.err
    assert "sk-inline-secret-1" not in out.err + out.out


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("sk-super-secret-value\n")
    p = tmp_path / "c.toml"
    p.write_text(MINIMAL.replace('api_key_env = "EDGE_AGENT_TEST_KEY"', f'api_key_file = "{key}"'))
    loaded = load_config(p)
    assert loaded.secrets.platform_keys["easy"].get_secret_value() == "sk-super-secret-value"
    assert "sk-super-secret-value" not in repr(loaded) + str(loaded.config.model_dump())


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "c.toml"
    p.parent.mkdir()
    p.write_text(MINIMAL)
    cfg = load_config(p).config
    assert cfg.device.state_dir == tmp_path / "sub" / "state"
    assert cfg.device.results_dir == tmp_path / "sub" / "state" / "results"
    assert cfg.platforms["easy"].base_url == "http://127.0.0.1:3001"  # trailing / tolerated


@pytest.mark.parametrize("name", ["demo.toml", "photobooth.toml", "tryon-kiosk.toml"])
def test_example_configs_are_valid(name: str, monkeypatch) -> None:
    monkeypatch.setenv("EASYAI_API_KEY", "k")
    monkeypatch.setenv("HAIYI_API_KEY", "k")
    loaded = load_config(REPO / "config" / name)
    assert loaded.config.profiles
    assert loaded.warnings == []
