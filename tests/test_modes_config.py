"""Each wrong mapping in a mode's profile is exit 2 at config load with the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from agent.config import ConfigError, load_config
from tests.support.examples import ASSETS, example
from tests.support.proc import run_cli


def errors_of(cfg: Path) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(cfg)
    return [line.removeprefix(f"{cfg}: ") for line in e.value.lines()]


@pytest.fixture
def fake_sim() -> Any:
    return SimpleNamespace(url="http://127.0.0.1:3001")  # config load never connects


WRONG = {
    "workflow node missing": (
        "haiyi-workflow.toml",
        {'image = "73.inputs.image"': 'image = "99.inputs.image"'},
        "profiles[0].inputs: image = '99.inputs.image': the workflow has no node '99' "
        "(nodes: 3, 4, 6, 7, 8, 9, 10, 73, 74) in tryon_api.json",
    ),
    "workflow input missing": (
        "haiyi-workflow.toml",
        {'"6.inputs.text"': '"6.inputs.prompt"'},
        "profiles[0].inputs: prompt = '6.inputs.prompt': node '6' (CLIPTextEncode) has no input 'prompt' "
        "(inputs: text, clip) in tryon_api.json",
    ),
    "workflow path not a node input": (
        "haiyi-workflow.toml",
        {'"3.inputs.seed"': '"3.seed"'},
        "profiles[0].inputs: seed = '3.seed': '3.seed' is not <node id>.inputs.<input name> in tryon_api.json",
    ),
    "workflow input without a value": (
        "haiyi-workflow.toml",
        {'seed = "3.inputs.seed"': 'steps = "3.inputs.steps"'},
        "profiles[0]: inputs.steps has no value: it is not image, prompt, a files entry or a param "
        "(of the profile, a choice or remote_params)",
    ),
    "image_field not a field name": (
        "easyai-tryon-edits.toml",
        {'image_field = "image[]"': 'image_field = "images"'},
        "profiles[0].image_field: got 'images'; expected 'image' or 'image[]'",
    ),
    "choice key of another endpoint": (
        "haiyi-app.toml",
        {'files = { garment_image = "ASSETS/dress-blue.png" }': 'images = ["ASSETS/dress-blue.png"]'},
        "profiles[0].choices: choice 'blue' (choices[0]) sets images, which endpoint apps.run does not take "
        "(its choices set files, params, prompt)",
    ),
    "prompt_field clashes with image_field": (
        "haiyi-app.toml",
        {'prompt_field = "description"': 'prompt_field = "input_image"'},
        "profiles[0]: prompt_field 'input_image' already carries the photo (image_field)",
    ),
    "image_as upload without a target": (
        "easyai-workflow.toml",
        {'image_as = "data_url"': 'image_as = "upload"'},
        'profiles[0].image_as: "upload" needs platforms.easy.upload_url, or public_dir and public_base_url '
        "(EasyAI has no upload route of its own)",
    ),
    "reference images on text2image": (
        "haiyi-generate.toml",
        {'type = "image2image"': 'type = "text2image"'},
        'profiles[0]: images: reference pictures need model.type = "image2image"',
    ),
    "a static image that is not one": (
        "easyai-workflow.toml",
        {"beach-background.png": "tryon_api.json"},
        f"profiles[0].files.background: not an image file Pillow can read: {ASSETS / 'tryon_api.json'} "
        "(UnidentifiedImageError)",
    ),
    "a choice of a missing garment": (
        "easyai-tryon-edits.toml",
        {'images = ["ASSETS/dress-blue.png"]': 'images = ["ASSETS/dress-green.png"]'},
        f"profiles[0].choices[1].images[0]: no such file: {ASSETS / 'dress-green.png'}",
    ),
    "duplicate choice ids": (
        "easyai-tryon-edits.toml",
        {'id = "blue"': 'id = "red"'},
        "profiles[0]: choices: duplicate id 'red'",
    ),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_wrong_mapping_is_a_config_error(case: str, fake_sim: Any, tmp_path: Path) -> None:
    name, replace, expected = WRONG[case]
    replace = {k.replace("ASSETS", str(ASSETS)): v.replace("ASSETS", str(ASSETS)) for k, v in replace.items()}
    lines = errors_of(example(name, fake_sim, tmp_path, replace))
    assert lines == [expected]


def test_a_mask_must_be_a_png(fake_sim: Any, tmp_path: Path) -> None:
    jpeg_mask = tmp_path / "mask.png"  # a JPEG under a PNG name
    Image.new("RGB", (32, 32)).save(jpeg_mask, "JPEG")
    cfg = example("easyai-tryon-edits.toml", fake_sim, tmp_path, {f"{ASSETS}/body-mask.png": str(jpeg_mask)})
    assert errors_of(cfg) == [
        f"profiles[0].mask: a mask must be a PNG (with transparency where the edit goes): {jpeg_mask} is JPEG"
    ]


def test_check_config_exits_2_naming_the_missing_node(fake_sim: Any, tmp_path: Path) -> None:
    cfg = example("haiyi-workflow.toml", fake_sim, tmp_path, {'"74.inputs.image"': '"75.inputs.image"'})
    r = run_cli("check-config", str(cfg))
    assert r.returncode == 2
    assert r.stdout + r.stderr == (
        f"{cfg}: profiles[0].inputs: garment = '75.inputs.image': the workflow has no node '75' "
        "(nodes: 3, 4, 6, 7, 8, 9, 10, 73, 74) in tryon_api.json\n"
    )


@pytest.mark.parametrize(
    "name",
    [
        "easyai-tryon-edits.toml",
        "easyai-poster.toml",
        "easyai-video.toml",
        "easyai-workflow.toml",
        "haiyi-app.toml",
        "haiyi-workflow.toml",
        "haiyi-generate.toml",
    ],
)
def test_every_example_passes_check_config_as_shipped(name: str) -> None:
    r = run_cli("check-config", str(Path(__file__).resolve().parents[1] / "config" / name))
    assert r.returncode == 0, r.stdout + r.stderr
