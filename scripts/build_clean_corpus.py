"""Rebuild the clean-photo corpus that the camera simulator (lgbpn.data.camera) turns into training pairs.

    python scripts/build_clean_corpus.py                          # -> ~/.cache/lgbpn/clean-corpus
    python scripts/build_clean_corpus.py --out /data/clean --no-shared

Sources (docs/clean-corpus.md lists them with their licences):
- photos in Debian packages (wallpapers, sample and test images), downloaded with `apt-get download`
  into --cache and unpacked there with `dpkg-deb -x`, never installed; only the photos listed below
  (chosen by eye: no illustrations, renders or abstract art), each under the licence that the package's
  copyright file (or the wallpaper's own metadata) gives it;
- scikit-image's bundled photos, except the astronaut (the demo's);
- the clean references in ../shared/data (PolyU, SIDD): research-only licences, kept apart by name
  (`polyu__*`, `sidd__*`) so that training can leave them out, or leave out a camera: `*NikonD800*`.

Each photo is reduced by at least 2x (area averaging), to a short side of at most --short-side, which
averages away its own noise and compression, and saved as PNG named `<source>__<name>.png`. The manifest
(committed: data/clean_corpus_manifest.csv) has one row per photo: its file, source and version, original
path, licence, sizes, and the SHA-256 of the original file and of the saved pixels. The images
themselves are never committed. A source that cannot be had (no apt-get, a missing package or file) is
reported and skipped; the others are built.
"""

import argparse
import csv
import fnmatch
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from lgbpn.io import atomic_path, atomic_write_bytes
from lgbpn.train.config import CLEAN_CORPUS

REPO = Path(__file__).resolve().parents[1]
OUT = CLEAN_CORPUS  # where `lgbpn distill` looks when --clean names no folder
CACHE = Path("~/.cache/lgbpn/debian")
SHARED = REPO.parent / "shared" / "data"
MANIFEST = REPO / "data" / "clean_corpus_manifest.csv"
SHORT_SIDE = 1024
MIN_SHORT_SIDE = 128  # a training crop's side: smaller photos are left out
FIELDS = ["file", "source", "version", "original", "licence", "width", "height", "original_width", "original_height",
          "original_sha256", "pixels_sha256"]

# Photos chosen from each package, as globs under the unpacked package; where a glob matches several
# files (a wallpaper at several resolutions) the largest is taken.
DEBIAN = {
    "lomiri-wallpapers-16.04": [f"usr/share/backgrounds/{name}.jpg" for name in [
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
        "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi"]],
    "lomiri-wallpapers-20.04": ["usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"],
    "mate-backgrounds": [f"usr/share/backgrounds/mate/nature/{name}.jpg" for name in [
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm", "TwoWings",
        "Wood", "YellowFlower"]],
    "plasma-workspace-wallpapers": [f"usr/share/wallpapers/{name}/contents/images/*" for name in [
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "summer_1am"]],
    "python3-sklearn": ["usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg",
                        "usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg"],
    "libjxl-testdata": ["usr/share/libjxl-testdata/jxl/flower/flower.png", "usr/share/libjxl-testdata/jxl/hdr_room.png"]
    + [f"usr/share/libjxl-testdata/external/wesaturate/500px/{name}_srgb8.png"
       for name in ["cvo9xd_keong_macan", "tmshre_riaphotographs", "u76c0g_bliznaca"]],
    "scribus-template": [f"usr/share/scribus/templates/{name}.jpg"
                         for name in ["br2/moon", "br2/nature", "br2/sunset", "menu2/pizza"]],
    "opencv-doc": [f"usr/share/doc/opencv-doc/examples/{name}" for name in [
        "alphamat/input_images/plant.jpg", "data/aloeL.jpg", "data/basketball1.png", "data/board.jpg",
        "data/box_in_scene.png", "data/building.jpg", "data/chicky_512.png", "data/ela_original.jpg", "data/fruits.jpg",
        "data/graf1.png", "data/leuvenA.jpg", "data/rubberwhale1.png", "data/squirrel_cls.jpg"]
        + [f"text/scenetext0{i}.jpg" for i in range(1, 7)] + [f"text/scenetext_segmented_word0{i}.jpg" for i in range(1, 5)]],
}
# Where the copyright file's stanzas do not say it of these files, what their own notices say.
LICENCE_NOTES = {
    ("python3-sklearn", "china.jpg"): "CC-BY-2.0 (sklearn/datasets/images/README.txt)",
    ("python3-sklearn", "flower.jpg"): "CC-BY-2.0 (sklearn/datasets/images/README.txt)",
    ("scribus-template", "*"): "public-domain (templates by Riku Leino, debian/copyright)",
    # upstream's samples/data, installed as examples/: the copyright file's `Files: *` stanza
    ("opencv-doc", "*"): "Apache-2.0 AND BSD-3-Clause (debian/copyright, Files: *)",
}
# scikit-image's photos and their licences (their docstrings); the astronaut is the demo's, left out.
SKIMAGE = {"chelsea": "CC0", "coffee": "CC0", "rocket": "public-domain", "camera": "CC0", "brick": "CC0", "grass": "CC0",
           "gravel": "CC0", "coins": "no-known-copyright-restrictions", "hubble_deep_field": "public-domain"}
SHARED_SETS = {"polyu": ("polyu/clean", "PolyU: non-commercial research use (../shared/data/README.md)"),
               "sidd": ("sidd_samples/clean", "SIDD: research use (../shared/data/README.md)"),
               "sidd_neca": ("extra/sidd_neca/clean", "SIDD: research use (../shared/data/README.md)")}


def skipped(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass
class Photo:
    source: str
    version: str
    original: str  # where it came from, for the manifest
    licence: str
    image: Image.Image
    original_bytes: bytes
    name: str


def reduced(image: Image.Image, short_side: int) -> Image.Image:
    """RGB, upright, reduced by at least 2x by area averaging, to a short side of at most `short_side`."""
    image = ImageOps.exif_transpose(image)
    image = image.convert("RGB") if image.mode in ("RGB", "RGBA", "P", "L", "LA", "CMYK", "YCbCr") else None
    if image is None:
        raise ValueError("not an 8-bit colour or grey image")
    factor = max(2.0, min(image.size) / short_side)
    size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    return image.resize(size, Image.Resampling.BOX)


def copyright_licences(text: str) -> list[tuple[list[str], str]]:
    """(file globs, licence) of each stanza of a machine-readable (DEP-5) debian/copyright, in order."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields, key = {}, None
        for line in block.splitlines():
            if line[:1].isspace() and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = [value.strip()]
        if "Files" in fields and "License" in fields:  # Files: globs over lines; License: its name, then its text
            stanzas.append((" ".join(fields["Files"]).split(), fields["License"][0]))
    return stanzas


def licence_of(package: str, root: Path, path: Path) -> str:
    """The licence of an unpacked package's file: a wallpaper's own metadata, a known notice, or the last
    stanza of the copyright file whose globs match the file (by its path's end, or its name)."""
    metadata = next((p for p in path.parents if (p / "metadata.json").is_file()), None)
    if metadata is not None:
        licence = json.loads((metadata / "metadata.json").read_text()).get("KPlugin", {}).get("License")
        if licence:
            return f"{licence} (wallpaper metadata.json)"
    for (pkg, pattern), note in LICENCE_NOTES.items():
        if pkg == package and fnmatch.fnmatch(path.name, pattern):
            return note
    relative = path.relative_to(root).as_posix()
    found = None
    for globs, licence in copyright_licences((root / "usr/share/doc" / package / "copyright").read_text(errors="replace")):
        if any(g == "*" or fnmatch.fnmatch(relative, "*/" + g) or ("*" not in Path(g).name and Path(g).name == path.name)
               for g in globs):
            found = licence
    if found is None:
        raise ValueError(f"{relative}: its package's copyright file names no licence for it")
    return f"{found} (debian/copyright)"


def debian_photos(cache: Path) -> list[Photo]:
    cache.mkdir(parents=True, exist_ok=True)
    photos = []
    for package, globs in DEBIAN.items():
        try:
            debs = sorted(cache.glob(f"{package}_*.deb"))
            if not debs:
                subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True, text=True)
                debs = sorted(cache.glob(f"{package}_*.deb"))
            deb = debs[-1]
            version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True,
                                     text=True).stdout.strip()
            root = cache / "unpacked" / f"{package}_{version}"
            if not root.is_dir():  # unpacked beside, then moved: a half-unpacked package is never taken
                partial = root.with_name(root.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
                subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True, capture_output=True, text=True)
                partial.rename(root)
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or error
            skipped(f"{package}: cannot download or unpack it ({str(detail).strip().splitlines()[-1:]}); skipped")
            continue
        for pattern in globs:
            matches = [p for p in root.glob(pattern) if p.is_file()]
            if not matches:
                skipped(f"{package}: no file {pattern}; skipped")
                continue
            try:
                sizes = {p: Image.open(p).size for p in matches}
                path = max(matches, key=lambda p: sizes[p][0] * sizes[p][1])
                # a KDE wallpaper is named by its folder: <name>/contents/images/<resolution>.jpg
                name = path.parents[2].name if path.parent.parent.name == "contents" else path.stem
                photos.append(Photo(package, version, "/" + path.relative_to(root).as_posix(), licence_of(package, root, path),
                                    Image.open(path), path.read_bytes(), name))
            except (OSError, ValueError) as error:
                skipped(f"{package}: {pattern}: {error}; skipped")
    return photos


def skimage_photos() -> list[Photo]:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    photos = []
    for name, licence in SKIMAGE.items():
        path = next(folder.glob(f"{name}.*"), None)
        if path is None:
            skipped(f"{folder}: no {name} photo; skipped")
            continue
        photos.append(Photo("scikit-image", skimage.__version__, f"skimage/data/{path.name}", licence, Image.open(path),
                            path.read_bytes(), name))
    return photos


def shared_photos(shared: Path) -> list[Photo]:
    photos = []
    for source, (folder, licence) in SHARED_SETS.items():
        files = sorted((shared / folder).glob("*"))
        if not files:
            skipped(f"{shared / folder}: no clean references; skipped")
        for path in files:
            try:
                photos.append(Photo(source, "", f"../shared/data/{folder}/{path.name}", licence, Image.open(path),
                                    path.read_bytes(), path.stem))
            except OSError as error:
                skipped(f"{path}: {error}; skipped")
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder for the photos (default {OUT})")
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"downloaded and unpacked packages (default {CACHE})")
    parser.add_argument("--shared", type=Path, default=SHARED, help="../shared/data, for its clean references")
    parser.add_argument("--manifest", type=Path, default=MANIFEST)
    parser.add_argument("--short-side", type=int, default=SHORT_SIDE, help="largest short side after the reduction")
    parser.add_argument("--no-debian", action="store_true")
    parser.add_argument("--no-skimage", action="store_true")
    parser.add_argument("--no-shared", action="store_true")
    args = parser.parse_args()
    out = args.out.expanduser()
    photos = ([] if args.no_debian else debian_photos(args.cache.expanduser())) + ([] if args.no_skimage else skimage_photos()) \
        + ([] if args.no_shared else shared_photos(args.shared))
    files = [re.sub(r"[^A-Za-z0-9._-]+", "-", f"{photo.source}__{photo.name}") + ".png" for photo in photos]
    twice = sorted({file for file in files if files.count(file) > 1})
    if twice:
        sys.exit(f"two photos would share a file name ({', '.join(twice)}): fix the source table")
    rows = []
    for file, photo in zip(files, photos):
        try:
            image = reduced(photo.image, args.short_side)
            if min(image.size) < MIN_SHORT_SIDE:
                raise ValueError(f"{image.width}x{image.height} once reduced, under a {MIN_SHORT_SIDE}-pixel crop")
        except (OSError, ValueError) as error:
            skipped(f"{photo.original}: {error}; skipped")
            continue
        with atomic_path(out / file) as tmp:
            image.save(tmp, "PNG")
        pixels = np.asarray(image)
        rows.append({"file": file, "source": photo.source, "version": photo.version, "original": photo.original,
                     "licence": photo.licence, "width": image.width, "height": image.height,
                     "original_width": photo.image.width, "original_height": photo.image.height,
                     "original_sha256": hashlib.sha256(photo.original_bytes).hexdigest(),
                     "pixels_sha256": hashlib.sha256(pixels.tobytes()).hexdigest()})
    rows.sort(key=lambda row: row["file"])
    stale = sorted(set(p.name for p in out.glob("*.png")) - set(files))
    if stale:
        skipped(f"{out}: {len(stale)} photos not from this build (an older one?), which training would take too: {', '.join(stale)}")
    text = io.StringIO()
    writer = csv.DictWriter(text, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(args.manifest, text.getvalue().encode())
    megapixels = sum(row["width"] * row["height"] for row in rows) / 1e6
    print(f"{len(rows)} photos, {megapixels:.1f} MP, in {out}; manifest {args.manifest}")
    for source in sorted({row["source"] for row in rows}):
        mine = [row for row in rows if row["source"] == source]
        licences = sorted({row["licence"].split(" (")[0] for row in mine})
        megapixels = sum(r["width"] * r["height"] for r in mine) / 1e6
        print(f"  {source:<28} {len(mine):>3} photos  {megapixels:6.1f} MP  {', '.join(licences)}")


if __name__ == "__main__":
    main()
