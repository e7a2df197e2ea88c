"""scripts/build_clean_corpus.py: photos reduced enough to lose their own noise, licences read right."""

import importlib.util
import json

import numpy as np
import pytest
from PIL import Image

from .conftest import ROOT

spec = importlib.util.spec_from_file_location("build_clean_corpus", ROOT / "scripts" / "build_clean_corpus.py")
corpus = importlib.util.module_from_spec(spec)
spec.loader.exec_module(corpus)


@pytest.mark.parametrize("size, mode, expected", [((1000, 600), "RGBA", (500, 300)), ((2300, 2100), "L", (1122, 1024)),
                                                  ((300, 200), "P", (150, 100))])
def test_photos_are_reduced_at_least_2x_to_rgb(size, mode, expected):
    reduced = corpus.reduced(Image.new(mode, size), short_side=1024)
    assert reduced.size == expected and reduced.mode == "RGB"


def test_reduction_averages_a_photos_own_noise_away():
    rng = np.random.default_rng(0)
    noisy = np.clip(128 + rng.normal(0, 8, (400, 600, 3)), 0, 255).astype(np.uint8)
    reduced = np.asarray(corpus.reduced(Image.fromarray(noisy), short_side=1024)).astype(np.float64)
    assert reduced.shape == (200, 300, 3)
    assert reduced.std() < 0.55 * noisy.std()  # 2x2 area means of white noise: half its std
    assert abs(reduced.mean() - noisy.mean()) < 0.5


def test_licences_come_from_the_copyright_stanzas_or_the_wallpapers_metadata(tmp_path):
    doc = tmp_path / "usr/share/doc/pkg"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: someone\nLicense: GPL-2+\n This program is free software.\n\n"
        "Files: 16.04/tree_by_A.jpg\n       nature/lake.jpg\nCopyright: A\nLicense: CC-BY-4.0\n\n"
        "Files: debian/*\nLicense: GPL-2+\n")
    backgrounds = tmp_path / "usr/share/backgrounds"
    wallpaper = tmp_path / "usr/share/wallpapers/Path"
    (wallpaper / "contents/images").mkdir(parents=True)
    (wallpaper / "metadata.json").write_text(json.dumps({"KPlugin": {"License": "LGPLv3", "Name": "Path"}}))
    assert corpus.licence_of("pkg", tmp_path, backgrounds / "tree_by_A.jpg") == "CC-BY-4.0 (debian/copyright)"
    assert corpus.licence_of("pkg", tmp_path, backgrounds / "lake.jpg") == "CC-BY-4.0 (debian/copyright)"  # a continued Files line
    assert corpus.licence_of("pkg", tmp_path, backgrounds / "other.jpg") == "GPL-2+ (debian/copyright)"
    assert corpus.licence_of("pkg", tmp_path, wallpaper / "contents/images/1920x1080.jpg") == "LGPLv3 (wallpaper metadata.json)"
    (doc / "copyright").write_text("Files: debian/*\nLicense: GPL-2+\n")
    with pytest.raises(ValueError, match="names no licence"):
        corpus.licence_of("pkg", tmp_path, backgrounds / "other.jpg")
