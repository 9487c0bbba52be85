"""Every platform mode end to end: the shipped example config, `edge-agent once` against the simulator over real
HTTP, then what the server received (fields, parts, picture sizes, the patched workflow) and what landed in the
result folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from agent.simulator import Simulator
from tests.support.examples import ASSETS, DEMO_KEY, example, job_json, once, sha
from tests.support.sim import running_sim

PHOTO = [1024, 768]  # the synthetic camera's 1280x960 frame, sent with upload.max_edge = 1024


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with running_sim(DEMO_KEY, latency=0.2, workers=4) as s:
        yield s


def received(sim: Simulator, endpoint: str) -> list[dict]:
    return [r for r in sim.received() if r["endpoint"] == endpoint]


def files_in(out: dict) -> list[str]:
    return sorted(p.name for p in Path(out["result_dir"]).iterdir())


def test_images_edits_tryon_sends_photo_garment_and_mask(sim: Simulator, tmp_path: Path) -> None:
    r, out = once(example("easyai-tryon-edits.toml", sim, tmp_path))
    assert r.returncode == 0, r.stderr
    (got,) = received(sim, "images.edits")
    assert got["fields"] == {
        "model": "tryon",
        "prompt": "dress the person in the garment",
        "resolution": "1K",
        "n": "1",
    }
    parts = [(p["name"], p["format"], p["image"]) for p in got["parts"]]
    assert parts == [("image[]", "JPEG", PHOTO), ("image[]", "PNG", [96, 128]), ("mask", "PNG", PHOTO)]
    assert got["parts"][1]["sha256"] == sha(ASSETS / "dress-red.png")  # the garment itself, byte for byte
    assert files_in(out) == ["capture.jpg", "job.json", "result-1.png"]
    assert [o["type"] for o in job_json(out)["outputs"]] == ["image"]


def test_images_generations_sends_the_prompt_and_no_photo(sim: Simulator, tmp_path: Path) -> None:
    r, out = once(example("easyai-poster.toml", sim, tmp_path))
    assert r.returncode == 0, r.stderr
    (got,) = received(sim, "images.generations")
    assert got["json"] == {
        "size": "768x1024",
        "n": 1,
        "prompt": "a retro travel poster of the sea",
        "model": "text2img",
    }
    with Image.open(Path(out["result_dir"], "result-1.png")) as im:
        assert im.size == (768, 1024)


def test_videos_generations_first_and_last_frame_and_an_mp4(sim: Simulator, tmp_path: Path) -> None:
    r, out = once(example("easyai-video.toml", sim, tmp_path))
    assert r.returncode == 0, r.stderr
    (got,) = received(sim, "videos.generations")
    body = got["json"]
    assert {k: body[k] for k in ("model", "duration", "frames", "size", "aspect_ratio")} == {
        "model": "video-dream",
        "duration": 5,
        "frames": 12,
        "size": "640x360",
        "aspect_ratio": "16:9",
    }
    text, first, last = body["content"]
    assert text == {"type": "text", "text": "the person waves at the camera"}
    assert (first["role"], first["image_url"]["url"]["image"]) == ("first_frame", PHOTO)
    assert (last["role"], last["image_url"]["url"]["sha256"]) == ("last_frame", sha(ASSETS / "sunset-end.png"))
    assert files_in(out) == ["capture.jpg", "job.json", "result-1.mp4"]
    assert Path(out["result_dir"], "result-1.mp4").read_bytes()[4:8] == b"ftyp"
    (o,) = job_json(out)["outputs"]
    assert (o["type"], o["content_type"]) == ("video", "video/mp4")


def test_ai_generations_names_its_inputs(sim: Simulator, tmp_path: Path) -> None:
    r, out = once(example("easyai-workflow.toml", sim, tmp_path))
    assert r.returncode == 0, r.stderr
    (got,) = received(sim, "ai.generations")
    params = got["json"]["params"]
    assert got["json"]["options"] == {"workflow_name": "beach-portrait"}
    assert params["positive"] == "a portrait on a beach" and params["steps"] == 20
    assert (params["input_photo"]["data_url"], params["input_photo"]["image"]) == ("image/jpeg", PHOTO)
    assert params["background"]["sha256"] == sha(ASSETS / "beach-background.png")
    assert "image" not in params
    assert files_in(out) == ["capture.jpg", "job.json", "result-1.png"]


def test_ai_generations_text_only_workflow_and_an_audio_output(sim: Simulator, tmp_path: Path) -> None:
    cfg = example(
        "easyai-workflow.toml",
        sim,
        tmp_path,
        {'image_param = "input_photo"': 'image_param = ""', '"beach-portrait"': '"audio-jingle"'},
    )
    r, out = once(cfg)
    assert r.returncode == 0, r.stderr
    params = received(sim, "ai.generations")[0]["json"]["params"]
    assert sorted(params) == ["background", "positive", "steps"]  # no photo at all
    assert files_in(out) == ["capture.jpg", "job.json", "result-1.wav"]
    assert [(o["type"], o["content_type"]) for o in job_json(out)["outputs"]] == [("audio", "audio/wav")]


def test_apps_run_fields_files_and_a_caption_next_to_the_picture(sim: Simulator, tmp_path: Path) -> None:
    r, out = once(example("haiyi-app.toml", sim, tmp_path))
    assert r.returncode == 0, r.stderr
    (got,) = received(sim, "apps.run")
    assert got["fields"] == {
        "workflow_id": "tryon-caption",
        "cluster_name": "GPU-4090",  # auto: the active cluster with the most spare nodes
        "version_id": "3",
        "description": "wearing the garment",
    }
    assert [(p["name"], p["format"]) for p in got["parts"]] == [("input_image", "JPEG"), ("garment_image", "PNG")]
    assert got["parts"][0]["image"] == PHOTO and got["parts"][1]["sha256"] == sha(ASSETS / "dress-red.png")
    assert files_in(out) == ["capture.jpg", "job.json", "result-1.png", "result-2.txt"]
    outputs = job_json(out)["outputs"]
    assert [o["type"] for o in outputs] == ["image", "text"]
    assert outputs[1]["text"] == Path(out["result_dir"], "result-2.txt").read_text()
    assert outputs[1]["text"].endswith("wearing the garment")


def test_workflow_submit_patches_uploaded_names_into_the_workflow(sim: Simulator, tmp_path: Path) -> None:
    r, out = once(example("haiyi-workflow.toml", sim, tmp_path))
    assert r.returncode == 0, r.stderr
    uploads = received(sim, "workflow.upload")
    assert [u["parts"][0]["format"] for u in uploads] == ["JPEG", "PNG"]
    assert uploads[1]["parts"][0]["sha256"] == sha(ASSETS / "dress-red.png")
    (got,) = received(sim, "workflow.submit")
    wf = got["workflow"]
    assert got["cluster"] == "GPU-4090"
    assert wf["73"]["inputs"]["image"].endswith(".jpg") and wf["74"]["inputs"]["image"].endswith(".png")
    assert wf["6"]["inputs"]["text"] == "a person wearing a red dress"
    assert wf["3"]["inputs"]["seed"] == 42
    assert wf["7"]["inputs"]["text"] == "blurry"  # the rest of the file as it is
    assert files_in(out) == ["capture.jpg", "job.json", "result-1.png"]


def test_generate_image_uploads_the_photo_and_references(sim: Simulator, tmp_path: Path) -> None:
    r, out = once(example("haiyi-generate.toml", sim, tmp_path))
    assert r.returncode == 0, r.stderr
    ups = received(sim, "file.upload")
    assert [u["parts"][0]["image"] for u in ups] == [PHOTO, [128, 96]]
    (got,) = received(sim, "generate.image")
    assert got["json"]["model"]["type"] == "image2image"
    urls = got["json"]["parameters"]["images"]
    assert len(urls) == 2 and all(u.startswith(sim.url + "/files/") for u in urls)
    assert files_in(out) == ["capture.jpg", "job.json", "result-1.png"]


def test_generate_image_without_an_upload_route_uses_upload_url(sim: Simulator, tmp_path: Path) -> None:
    sim.configure(quirks={"no_file_upload"})
    cfg = example(
        "haiyi-generate.toml",
        sim,
        tmp_path,
        {'# upload_url = "https://uploads.example.com/booth"': f'upload_url = "{sim.url}/_sim/upload"'},
    )
    r, out = once(cfg)
    assert r.returncode == 0, r.stderr
    assert received(sim, "file.upload") == []
    assert [u["parts"][0]["image"] for u in received(sim, "upload.target")] == [PHOTO, [128, 96]]


def test_generate_image_without_any_upload_fails_naming_the_keys(sim: Simulator, tmp_path: Path) -> None:
    sim.configure(quirks={"no_file_upload"})
    r, out = once(example("haiyi-generate.toml", sim, tmp_path))
    assert r.returncode == 1 and out["state"] == "failed"
    assert out["error"] == (
        "Haiyi has no /openapi/v1/file/upload (HTTP 404); set platforms.haiyi.upload_url, or public_dir and "
        "public_base_url, so the booth can give the platform a public URL for the picture"
    )
    assert received(sim, "generate.image") == []
