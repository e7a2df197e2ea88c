"""`lgbpn ui`'s server: uploads, jobs, progress, downloads equal to `lgbpn denoise`, errors as messages."""

import io
import time

import numpy as np
import pytest
from PIL import Image as PILImage

from lgbpn.io import Image, read_image, write_image

from .helpers import noisy_image, run_cli

pytest.importorskip("starlette", reason="the ui extra is not installed: pip install -e '.[ui]'")
from starlette.testclient import TestClient  # noqa: E402  (after the skip)

from lgbpn.ui.app import create_app  # noqa: E402


@pytest.fixture
def client():
    with TestClient(create_app()) as client:  # the lifespan removes the session's folder at the end
        yield client


def upload(client, path, name=None, route="/api/photos"):
    return client.post(route, files={"file": (name or path.name, path.read_bytes())})


def finished(client, job: dict, timeout: float = 60) -> dict:
    end = time.monotonic() + timeout
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < end, job
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}").json()
    return job


def test_page_offers_models_strength_and_download(client):
    page = client.get("/").text
    for control in ('id="files"', 'id="model"', 'id="strength"', 'max="2"', 'id="split"', 'id="zoom"', 'id="download"'):
        assert control in page
    models = client.get("/api/models").json()
    assert models[0] == {"id": "lgbpn-fast", "label": "lgbpn-fast (default, fast)", "default": True}
    assert "lgbpn-s" in [m["id"] for m in models]


@pytest.mark.parametrize("suffix, dtype, strength", [(".tif", np.uint16, 0.5), (".png", np.uint8, 1.5)])
def test_download_equals_lgbpn_denoise_in_the_inputs_format_and_depth(client, tmp_path, suffix, dtype, strength):
    source = tmp_path / f"shot{suffix}"
    write_image(source, Image(noisy_image(80, 96, dtype=dtype), None, None, ""))
    photo = upload(client, source).json()
    assert (photo["name"], photo["width"], photo["height"]) == (source.name, 96, 80)
    assert photo["depth"] == ("16-bit" if dtype == np.uint16 else "8-bit") and photo["noise"] > 0
    job = finished(client, client.post("/api/jobs", json={"photo": photo["id"], "model": "lgbpn-fast",
                                                          "strength": strength}).json())
    assert job["state"] == "done" and job["progress"] == 1 and job["download"] == f"shot_denoised{suffix}", job
    assert job["noise"] < photo["noise"]
    response = client.get(f"/api/jobs/{job['id']}/result")
    assert response.status_code == 200 and f'filename="shot_denoised{suffix}"' in response.headers["content-disposition"]
    downloaded = tmp_path / f"downloaded{suffix}"
    downloaded.write_bytes(response.content)
    expected = tmp_path / f"cli{suffix}"
    assert run_cli("denoise", source, "-o", expected, "--strength", strength).exit_code == 0
    assert read_image(downloaded).pixels.dtype == dtype
    assert np.array_equal(read_image(downloaded).pixels, read_image(expected).pixels)
    view = PILImage.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/view.png").content))
    assert (view.size, view.mode) == ((96, 80), "RGB")  # what the browser shows: full resolution, 8-bit


def test_a_new_job_replaces_the_photos_previous_one(client, tmp_path):
    source = tmp_path / "a.png"
    PILImage.fromarray(noisy_image(40, 40)).save(source)
    photo = upload(client, source).json()
    first = finished(client, client.post("/api/jobs", json={"photo": photo["id"], "strength": 1}).json())
    second = finished(client, client.post("/api/jobs", json={"photo": photo["id"], "strength": 0}).json())
    assert second["state"] == "done" and second["model"] == "lgbpn-fast"
    assert client.get(f"/api/jobs/{first['id']}").status_code == 404
    assert np.array_equal(read_image_bytes(client.get(f"/api/jobs/{second['id']}/result").content), noisy_image(40, 40))


def read_image_bytes(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)))


def test_errors_are_one_line_messages_naming_the_users_file(client, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    response = upload(client, broken, name="../../holiday.jpg")
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("holiday.jpg: ") and "\n" not in message and "Traceback" not in message
    assert str(tmp_path) not in message and "lgbpn-ui-" not in message  # the server's folders stay private
    source = tmp_path / "a.png"
    PILImage.fromarray(noisy_image(40, 40)).save(source)
    photo = upload(client, source).json()
    bad = client.post("/api/jobs", json={"photo": photo["id"], "strength": 3})
    assert bad.status_code == 400 and bad.json()["error"].startswith("strength: must be from 0")
    assert client.post("/api/jobs", json={"photo": photo["id"], "model": "/etc/passwd"}).status_code == 400
    assert client.post("/api/jobs", json={"photo": "nope"}).status_code == 400
    missing = client.get("/api/jobs/0123/result")
    assert missing.status_code == 404 and "no such" in missing.json()["error"]
    assert client.post("/api/photos", data={"x": "1"}).json()["error"].startswith("no file")


def test_uploaded_weights_become_a_model_choice(client, tmp_path, weights):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    message = upload(client, bad, route="/api/weights").json()["error"]
    assert message.startswith("bad.safetensors") and str(tmp_path) not in message
    assert upload(client, bad, name="x.exe", route="/api/weights").json()["error"].startswith("x.exe: not a weights file")
    added = upload(client, weights, route="/api/weights").json()
    assert added["label"] == "tiny.safetensors (lgbpn-s)" and added in [
        {k: m[k] for k in ("id", "label")} for m in client.get("/api/models").json()]
    source = tmp_path / "a.png"
    PILImage.fromarray(noisy_image(40, 40)).save(source)
    photo = upload(client, source).json()
    job = finished(client, client.post("/api/jobs", json={"photo": photo["id"], "model": added["id"]}).json())
    assert job["state"] == "done", job
    expected = tmp_path / "cli.png"
    assert run_cli("denoise", source, "-o", expected, "--weights", weights).exit_code == 0
    assert np.array_equal(read_image_bytes(client.get(f"/api/jobs/{job['id']}/result").content), read_image(expected).pixels)


@pytest.mark.slow
def test_progress_counts_the_tiles_of_both_passes(tmp_path):
    from lgbpn.ui.session import Session

    session = Session()
    seen = []
    report = session._report
    session._report = lambda done, tiles: (report(done, tiles), seen.append(session._running.progress))
    try:
        source = tmp_path / "big.png"
        PILImage.fromarray(noisy_image(700, 1100)).save(source)  # 2 tiles of the student's default 1008
        job = session.submit(session.add_photo("big.png", source.read_bytes()).id, "lgbpn-fast", 1.5)
        end = time.monotonic() + 120
        while job.state in ("queued", "running") and time.monotonic() < end:
            time.sleep(0.05)
        assert job.state == "done", job.message
        assert seen == pytest.approx([n / 4 for n in range(1, 5)])  # 2 tiles, twice
    finally:
        session.close()


def test_a_bug_is_a_json_message_not_a_traceback_page(tmp_path):
    from lgbpn.ui.session import Session

    session = Session()
    session.add_photo = lambda name, data: 1 / 0  # a bug in the server's own code
    with TestClient(create_app(session), raise_server_exceptions=False) as client:
        response = client.post("/api/photos", files={"file": ("a.png", b"x")})
    assert response.status_code == 500
    assert response.json() == {"error": "unexpected ZeroDivisionError (division by zero); please report this"}


def test_ui_command_listens_on_localhost_by_default():
    help_text = run_cli("ui", "--help").output
    assert "127.0.0.1" in help_text and "7860" in help_text
