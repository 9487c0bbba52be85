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
    (
        "unknown key with a hint",
        MINIMAL + '[camera]\ndriver = "synthetic"\nwidht = 640\n',
        ["PATH: camera.widht: unknown key (did you mean 'width'?)"],
    ),
    ("unknown section", MINIMAL + "[camra]\nx = 1\n", ["PATH: camra: unknown key (did you mean 'camera'?)"]),
    (
        "unknown platform key",
        MINIMAL.replace('kind = "easyai"', 'kind = "easyai"\npol_interval_s = 1'),
        ["PATH: platforms.easy.pol_interval_s: unknown key (did you mean 'poll_interval_s'?)"],
    ),
    (
        "unknown key in a table array",
        MINIMAL.replace('model = "cartoon_v2"', 'modle = "x"\nmodel = "y"'),
        ["PATH: profiles[0].modle: unknown key (did you mean 'model'?)"],
    ),
    ("wrong type", MINIMAL + '[upload]\nmax_edge = "big"\n', ["PATH: upload.max_edge: expected an integer, got 'big'"]),
    (
        "out of range",
        MINIMAL + "[upload]\njpeg_quality = 150\n",
        ["PATH: upload.jpeg_quality: must be <= 100, got 150"],
    ),
    (
        "bad device id",
        MINIMAL.replace('id = "booth-01"', 'id = "Booth 1"'),
        ["PATH: device.id: 'Booth 1': use only lower-case letters, digits, - and _ (no spaces)"],
    ),
    (
        "unknown camera driver",
        MINIMAL + '[camera]\ndriver = "webcam"\n',
        ["PATH: camera.driver: unknown value 'webcam'; expected one of 'synthetic', 'file', 'opencv', 'picamera2'"],
    ),
    (
        "missing file camera path",
        MINIMAL + '[camera]\ndriver = "file"\npath = "nope.jpg"\n',
        ["PATH: camera.path: no such file or folder: {dir}/nope.jpg"],
    ),
    (
        "missing key file",
        MINIMAL.replace('api_key_env = "EDGE_AGENT_TEST_KEY"', 'api_key_file = "easyai.key"'),
        ["PATH: platforms.easy.api_key_file: no such file: {dir}/easyai.key"],
    ),
    (
        "unset key env",
        MINIMAL.replace("EDGE_AGENT_TEST_KEY", "EDGE_AGENT_UNSET_VAR"),
        ["PATH: platforms.easy.api_key_env: environment variable EDGE_AGENT_UNSET_VAR is not set"],
    ),
    (
        "key pasted into api_key_env",
        MINIMAL.replace("EDGE_AGENT_TEST_KEY", "sk-live-0123-abcd"),
        ["PATH: platforms.easy.api_key_env: must be the name of an environment variable (like EASYAI_API_KEY)"],
    ),
    ("bad pin", MINIMAL + "[[buttons]]\npin = 40\n", ["PATH: buttons[0].pin: BCM pin 40 does not exist (0-27)"]),
    (
        "pin used twice",
        MINIMAL + "[[buttons]]\npin = 17\n[indicators]\nready_led = 17\n",
        ["PATH: indicators.ready_led: pin 17 is already used by buttons[0].pin"],
    ),
    (
        "unknown platform",
        MINIMAL.replace('platform = "easy"', 'platform = "eazy"'),
        ["PATH: profiles[0].platform: unknown platform 'eazy' (did you mean 'easy'?)"],
    ),
    (
        "endpoint of the other platform",
        MINIMAL.replace("images.edits", "apps.run"),
        [
            "PATH: profiles[0].endpoint: 'apps.run' is not an endpoint of an 'easyai' platform; "
            "expected one of images.edits, images.generations, videos.generations, ai.generations"
        ],
    ),
    (
        "unknown button profile",
        MINIMAL + '[[buttons]]\npin = 17\nprofile = "zzz"\n',
        ["PATH: buttons[0].profile: unknown profile 'zzz'"],
    ),
    (
        "public listen without token",
        MINIMAL + '[http]\nlisten = "0.0.0.0:8080"\n',
        ["PATH: http.listen: 0.0.0.0 is not loopback: set http.token_file so the API needs a token"],
    ),
    (
        "remote params may not name images",
        MINIMAL.replace('model = "cartoon_v2"', 'model = "m"\nremote_params = ["image"]'),
        ["PATH: profiles[0].remote_params: 'image' can never be set remotely (paths and URLs)"],
    ),
    (
        "haiyi app without workflow id",
        MINIMAL + '[platforms.h]\nkind = "haiyi"\nbase_url = "http://h"\n'
        'api_key_env = "EDGE_AGENT_TEST_KEY"\n[[profiles]]\nname = "t"\nplatform = "h"\nendpoint = "apps.run"\n',
        ["PATH: profiles[1].workflow_id: missing required key for endpoint apps.run"],
    ),
    (
        "missing required key",
        MINIMAL.replace('endpoint = "images.edits"\n', ""),
        ["PATH: profiles[0].endpoint: missing required key"],
    ),
    (
        "TOML syntax",
        "[device\nid = 1\n",
        ["PATH: TOML syntax error: Expected ']' at the end of a table declaration (at line 1, column 8)"],
    ),
    ("no profiles", MINIMAL.split("[[profiles]]")[0], ["PATH: profiles: at least one [[profiles]] entry is needed"]),
    # where the config was read from is not something a file may set
    ("source key", 'source = "elsewhere.toml"\n' + MINIMAL, ["PATH: source: unknown key"]),
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
        "PATH: device.id: 'Booth': use only lower-case letters, digits, - and _ (no spaces)",
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


# --------------------------------------------------------------------------------------------- profiles per endpoint

HAIYI = '[platforms.h]\nkind = "haiyi"\nbase_url = "http://h"\napi_key_env = "EDGE_AGENT_TEST_KEY"\n'


def haiyi_profile(endpoint: str, body: str) -> str:
    return MINIMAL + HAIYI + f'[[profiles]]\nname = "t"\nplatform = "h"\nendpoint = "{endpoint}"\n{body}'


# a key another endpoint uses, on each endpoint: an error naming the key and who takes it (never silently ignored)
OTHER_ENDPOINTS_KEYS = [
    (
        "files on images.edits",
        MINIMAL + 'files = { garment = "g.png" }\n',
        [
            "PATH: profiles[0].files: unknown key for endpoint images.edits (only ai.generations, apps.run, workflow.submit take it)"
        ],
    ),
    (
        "workflow_file on ai.generations",
        MINIMAL.replace("images.edits", "ai.generations") + 'workflow_file = "wf.json"\n',
        ["PATH: profiles[0].workflow_file: unknown key for endpoint ai.generations (only workflow.submit takes it)"],
    ),
    (
        "model table on apps.run",
        haiyi_profile("apps.run", 'workflow_id = "1"\nmodel = { provider = "g", model = "m" }\n'),
        [
            "PATH: profiles[1].model: unknown key for endpoint apps.run (only images.edits, images.generations, "
            "videos.generations, ai.generations, generate.image "
            "take it)"
        ],
    ),
    (
        "workflow_id on workflow.submit",
        haiyi_profile(
            "workflow.submit", 'workflow_file = "wf.json"\ninputs = { image = "1.inputs.image" }\nworkflow_id = "1"\n'
        ),
        ["PATH: profiles[1].workflow_id: unknown key for endpoint workflow.submit (only apps.run takes it)"],
    ),
    (
        "image_field on generate.image",
        haiyi_profile("generate.image", 'model = { provider = "g", model = "m" }\nimage_field = "x"\n'),
        [
            "PATH: profiles[1].image_field: unknown key for endpoint generate.image (only images.edits, apps.run take it)"
        ],
    ),
]


@pytest.mark.parametrize("name,text,expected", OTHER_ENDPOINTS_KEYS, ids=[c[0] for c in OTHER_ENDPOINTS_KEYS])
def test_a_key_of_another_endpoint_is_an_error(
    tmp_path: Path, capsys, name: str, text: str, expected: list[str]
) -> None:
    (tmp_path / "g.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "wf.json").write_text('{"1": {"inputs": {"image": "x.png"}}}')
    code, lines = check(tmp_path, text, capsys)
    assert code == 2
    assert lines == expected


def test_a_key_of_another_endpoint_fails_check_config_as_a_command(tmp_path: Path) -> None:
    p = tmp_path / "booth.toml"
    p.write_text(OTHER_ENDPOINTS_KEYS[0][1])
    r = run_cli("check-config", str(p))
    assert r.returncode == 2
    assert r.stderr.strip() == f"{p}: " + OTHER_ENDPOINTS_KEYS[0][2][0].removeprefix("PATH: ")


PROFILE_CASES = [
    (
        "a typo of the endpoint's own key",
        haiyi_profile("workflow.submit", 'workflow_fille = "wf.json"\ninputs = { image = "1.inputs.image" }\n'),
        [
            "PATH: profiles[1].workflow_file: missing required key for endpoint workflow.submit",
            "PATH: profiles[1].workflow_fille: unknown key (did you mean 'workflow_file'?)",
        ],
    ),
    (
        "workflow.submit without inputs",
        haiyi_profile("workflow.submit", 'workflow_file = "wf.json"\n'),
        ["PATH: profiles[1].inputs: missing required key for endpoint workflow.submit"],
    ),
    (
        "workflow.submit with empty inputs",
        haiyi_profile("workflow.submit", 'workflow_file = "wf.json"\ninputs = {}\n'),
        ["PATH: profiles[1].inputs: needs at least 1 entry"],
    ),
    (
        "workflow file missing",
        haiyi_profile("workflow.submit", 'workflow_file = "nope.json"\ninputs = { a = "1.b" }\n'),
        ["PATH: profiles[1].workflow_file: no such file: {dir}/nope.json"],
    ),
    (
        "apps.run file missing",
        haiyi_profile("apps.run", 'workflow_id = 7\nfiles = { garment = "nope.png" }\n'),
        ["PATH: profiles[1].files.garment: no such file: {dir}/nope.png"],
    ),
    (
        "generate.image model as a string",
        haiyi_profile("generate.image", 'model = "gemini"\n'),
        ["PATH: profiles[1].model: generate.image needs model = {{ provider, model, type }}"],
    ),
    (
        "generate.image model table typo",
        haiyi_profile("generate.image", 'model = { provider = "g", modle = "m" }\n'),
        [
            "PATH: profiles[1].model.model: missing required key",
            "PATH: profiles[1].model.modle: unknown key (did you mean 'model'?)",
        ],
    ),
    (
        "empty EasyAI model",
        MINIMAL.replace('model = "cartoon_v2"', 'model = ""'),
        ["PATH: profiles[0].model: must not be empty"],
    ),
    (
        "EasyAI profile without a model",
        MINIMAL.replace('model = "cartoon_v2"\n', ""),
        ["PATH: profiles[0].model: missing required key for endpoint images.edits"],
    ),
    (
        "unknown endpoint on a known platform",
        MINIMAL.replace("images.edits", "images.edit"),
        [
            "PATH: profiles[0].endpoint: 'images.edit' is not an endpoint of an 'easyai' platform; "
            "expected one of images.edits, images.generations, videos.generations, ai.generations"
        ],
    ),
    (
        "unknown endpoint on an unknown platform",
        MINIMAL.replace("images.edits", "x.y").replace('"easy"\nendpoint', '"nope"\nendpoint'),
        [
            "PATH: profiles[0].endpoint: unknown value 'x.y'; expected one of 'images.edits', 'images.generations', "
            "'videos.generations', 'ai.generations', "
            "'apps.run', 'workflow.submit', 'generate.image'"
        ],
    ),
    (
        "a Haiyi endpoint with its own keys on an EasyAI platform",
        MINIMAL.replace('endpoint = "images.edits"\nmodel = "cartoon_v2"', 'endpoint = "apps.run"\nworkflow_id = "1"'),
        [
            "PATH: profiles[0].endpoint: 'apps.run' is not an endpoint of an 'easyai' platform; "
            "expected one of images.edits, images.generations, videos.generations, ai.generations"
        ],
    ),
]


@pytest.mark.parametrize("name,text,expected", PROFILE_CASES, ids=[c[0] for c in PROFILE_CASES])
def test_profile_errors_per_endpoint(tmp_path: Path, capsys, name: str, text: str, expected: list[str]) -> None:
    (tmp_path / "wf.json").write_text('{"1": {"inputs": {"image": "x.png"}}}')
    code, lines = check(tmp_path, text, capsys)
    assert code == 2
    assert lines == [e.format(dir=tmp_path) for e in expected]


def test_each_endpoint_loads_with_only_its_own_keys(tmp_path: Path) -> None:
    (tmp_path / "garments").mkdir()
    (tmp_path / "garments" / "dress.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "wf.json").write_text('{"1": {"inputs": {"image": "x.png"}}}')
    text = (
        MINIMAL
        + HAIYI
        + '[[profiles]]\nname = "gen"\nplatform = "easy"\nendpoint = "ai.generations"\nmodel = "oil"\n'
        + '[[profiles]]\nname = "app"\nplatform = "h"\nendpoint = "apps.run"\nworkflow_id = 1234\n'
        + 'version_id = 2\nfiles = { garment_image = "garments/dress.png" }\n'
        + '[[profiles]]\nname = "wf"\nplatform = "h"\nendpoint = "workflow.submit"\nworkflow_file = "wf.json"\n'
        + 'inputs = { image = "1.inputs.image" }\nfiles = { mask = "garments/dress.png" }\n'
        + '[[profiles]]\nname = "g3"\nplatform = "h"\nendpoint = "generate.image"\n'
        + 'model = { provider = "google", model = "gemini", type = "text2image" }\n'
    )
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "c.toml"
    p.write_text(text.replace('"garments/', '"../garments/').replace('"wf.json"', '"../wf.json"'))
    cfg = load_config(p).config
    app, wf, g3 = cfg.profile("app"), cfg.profile("wf"), cfg.profile("g3")
    assert app.workflow_id == "1234" and app.version_id == "2" and app.image_field == "input_image"  # type: ignore
    assert app.files == {"garment_image": tmp_path / "garments" / "dress.png"}  # type: ignore[attr-defined]
    assert wf.workflow_file == tmp_path / "wf.json"  # type: ignore[attr-defined]
    assert wf.files == {"mask": tmp_path / "garments" / "dress.png"}  # type: ignore[attr-defined]
    assert g3.model.type == "text2image"  # type: ignore[attr-defined]
    assert [p.endpoint for p in cfg.profiles] == [
        "images.edits",
        "ai.generations",
        "apps.run",
        "workflow.submit",
        "generate.image",
    ]


def test_profile_models_come_from_the_mode_registry() -> None:
    from typing import get_args

    from agent.platforms.modes import MODES

    assert list(MODES) == [
        "images.edits",
        "images.generations",
        "videos.generations",
        "ai.generations",
        "apps.run",
        "workflow.submit",
        "generate.image",
    ]
    for endpoint, mode in MODES.items():
        assert mode.endpoint == endpoint and mode.kind in ("easyai", "haiyi")
        assert get_args(mode.profile_model.model_fields["endpoint"].annotation) == (endpoint,)
        assert mode.is_async == (endpoint not in ("images.edits", "images.generations"))


def _models_of(tp, seen: set) -> None:
    from typing import get_args

    from pydantic import BaseModel

    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return
        seen.add(tp)
        for f in tp.model_fields.values():
            _models_of(f.annotation, seen)
    for arg in get_args(tp):
        _models_of(arg, seen)


def test_every_config_field_has_a_one_line_description() -> None:
    from agent.config import Config

    models: set = set()
    _models_of(Config, models)
    assert len(models) > 15  # every section, camera driver, platform kind, profile mode, the generate.image model
    missing = [f"{m.__name__}.{n}" for m in models for n, f in m.model_fields.items() if not f.description]
    assert missing == []
    long = [
        f"{m.__name__}.{n}"
        for m in models
        for n, f in m.model_fields.items()
        if "\n" in (f.description or "") or len(f.description or "") > 100
    ]
    assert long == []


def test_a_key_pasted_where_its_file_goes_is_never_echoed(tmp_path: Path, capsys) -> None:
    key = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e"
    text = MINIMAL.replace('api_key_env = "EDGE_AGENT_TEST_KEY"', f'api_key_file = "{key}"')
    code, lines = check(tmp_path, text, capsys)
    assert code == 2
    assert lines == [
        "PATH: platforms.easy.api_key_file: this looks like the api key itself, not a file's path (its value is not "
        "shown); put it in a file readable only by the agent and give that file's path here"
    ]
    assert not any(key[i : i + 8] in "\n".join(lines) for i in range(len(key) - 7))
    # an ordinary missing file is still named, so the technician can fix the path
    code, lines = check(tmp_path, text.replace(key, "keys/easyai.key"), capsys)
    assert lines == [f"PATH: platforms.easy.api_key_file: no such file: {tmp_path / 'keys' / 'easyai.key'}"]
