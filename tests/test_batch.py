"""Denoising a folder as a pipeline (lgbpn.batch): the next file decodes and the previous one encodes while
the network runs, with the outputs, errors and warnings of a plain loop."""

import logging
import threading

import numpy as np
from PIL import Image as PILImage

from lgbpn import batch
from lgbpn.batch import denoise_files, plan_outputs
from lgbpn.denoiser import Denoiser
from lgbpn.io import read_image

from .helpers import noisy_image


def test_folder_outputs_equal_a_plain_loop_and_a_bad_file_is_reported(tmp_path, weights, caplog):
    src = tmp_path / "in"
    src.mkdir()
    PILImage.fromarray(noisy_image(40, 36, seed=1)).save(src / "a.png")
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    PILImage.fromarray(noisy_image(33, 47, channels=1, seed=2)[..., 0]).save(src / "c.png")
    rgba = np.dstack([noisy_image(30, 30, seed=3), np.full((30, 30), 200, np.uint8)])
    PILImage.fromarray(rgba, "RGBA").save(src / "d.png")
    PILImage.fromarray(noisy_image(32, 32, seed=4)).save(src / "e.jpg", quality=95)
    out = tmp_path / "out"
    denoiser = Denoiser.from_weights(weights, r3=False, precision="fp32")
    with caplog.at_level(logging.INFO, logger="lgbpn"):
        code = denoise_files(lambda: denoiser, plan_outputs([src], out))
    assert code == 3
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"error: {src / 'b.png'}: ")
    assert "4 denoised, 0 skipped (output exists), 1 failed" in caplog.text
    for name in ("a.png", "c.png", "d.png", "e.jpg"):
        image = read_image(src / name)
        expected = denoiser.denoise_pixels(image.pixels)  # one by one, as a plain loop runs them
        written = read_image(out / name)
        if name.endswith(".png"):
            assert np.array_equal(written.pixels, expected), name
        else:
            assert np.abs(written.pixels.astype(int) - expected).mean() < 2  # JPEG quality 95
        assert (written.alpha is None) == (image.alpha is None)


def test_warnings_name_their_file_whichever_thread_raised_them(tmp_path, weights, caplog):
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.dstack([noisy_image(30, 30, seed=3), np.full((30, 30), 200, np.uint8)])
    for name in ("x.png", "y.png"):
        PILImage.fromarray(rgba, "RGBA").save(src / name)
    jobs = [batch.Job(src / "x.png", tmp_path / "x.jpg"), batch.Job(src / "y.png", tmp_path / "y.png")]
    with caplog.at_level(logging.INFO, logger="lgbpn"):
        code = denoise_files(lambda: Denoiser.from_weights(weights, r3=False), jobs)
    assert code == 0
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"warning: {src / 'x.png'}: {tmp_path / 'x.jpg'}: JPEG cannot store alpha; the alpha channel is "
                      "dropped"]


class _Watching:
    """A stand-in denoiser that records, while it works on a file, whether the next file was being decoded
    and the previous one encoded."""

    def __init__(self, names, started_reading, started_writing):
        self.names, self.started_reading, self.started_writing = names, started_reading, started_writing
        self.calls = 0
        self.overlaps = []

    def denoise_pixels(self, pixels):
        index = self.calls
        self.calls += 1
        reading_next = index + 1 >= len(self.names) or self.started_reading[self.names[index + 1]].wait(20)
        writing_previous = index == 0 or self.started_writing[self.names[index - 1]].wait(20)
        self.overlaps.append((reading_next, writing_previous))
        return pixels


def test_the_next_file_decodes_and_the_previous_encodes_while_one_is_denoised(tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    names = [f"{i}.png" for i in range(4)]
    for i, name in enumerate(names):
        PILImage.fromarray(noisy_image(16, 16, seed=i)).save(src / name)
    started_reading = {name: threading.Event() for name in names}
    started_writing = {name: threading.Event() for name in names}
    finish_writing = threading.Event()
    real_read, real_write = batch.read_image, batch.write_image

    def read(path):
        started_reading[path.name].set()
        return real_read(path)

    def write(path, image, png_compression):
        started_writing[path.name].set()
        finish_writing.wait(0.2)  # an encode slower than the network: it still overlaps the next file
        real_write(path, image, png_compression)

    monkeypatch.setattr(batch, "read_image", read)
    monkeypatch.setattr(batch, "write_image", write)
    watching = _Watching(names, started_reading, started_writing)
    assert denoise_files(lambda: watching, plan_outputs([src], tmp_path / "out")) == 0
    assert watching.overlaps == [(True, True)] * len(names)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names


class _Copying:
    """A stand-in denoiser that returns its input, and is interrupted (Ctrl-C) on the file numbered `stop`."""

    def __init__(self, stop=None):
        self.stop, self.seen = stop, 0

    def denoise_pixels(self, pixels):
        self.seen += 1
        if self.seen == self.stop:
            raise KeyboardInterrupt
        return pixels


def _folder(tmp_path, count):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(count):
        PILImage.fromarray(noisy_image(16, 16, seed=i)).save(src / f"{i}.png")
    return src


def test_an_interrupt_says_what_was_done_and_keeps_the_finished_outputs(tmp_path, caplog):
    src, out = _folder(tmp_path, 5), tmp_path / "out"
    (out / "0.png").parent.mkdir()
    PILImage.fromarray(noisy_image(16, 16)).save(out / "0.png")
    with caplog.at_level(logging.INFO, logger="lgbpn"):
        try:
            denoise_files(lambda: _Copying(stop=3), plan_outputs([src], out), skip_existing=True)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("the interrupt must reach the caller")
    assert ("interrupted: 2 denoised, 1 skipped, 0 failed, 2 not done; run again with --skip-existing to resume"
            in caplog.text)
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png"]  # the ones before: written whole
    assert np.array_equal(read_image(out / "2.png").pixels, read_image(src / "2.png").pixels)


def test_under_torchrun_each_rank_denoises_its_share(tmp_path, monkeypatch):
    src, out = _folder(tmp_path, 5), tmp_path / "out"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert denoise_files(lambda: _Copying(), plan_outputs([src], out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "3.png"]
