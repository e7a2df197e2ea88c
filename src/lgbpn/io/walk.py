"""Finding image files in folders: the one walk that denoising, scoring and datasets share."""

import os
from pathlib import Path

from ..errors import ImageReadError
from .image import SUPPORTED_SUFFIXES


def image_files(folder: Path) -> list[Path]:
    """Files under `folder` with a supported suffix (any case), recursively, sorted.

    Hidden files and folders (name starting with ".": macOS `._x.png`, our temporary files) are skipped.
    """
    found = []
    for parent, subfolders, names in os.walk(folder):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [Path(parent, name) for name in names
                  if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES]
    return sorted(found)


def find_images(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """Expand inputs into (image file, name relative to its input) pairs.

    A file is taken as is (whatever its suffix: read_image judges it) and named by its file name;
    a folder gives its image_files. A missing input raises ImageReadError.
    """
    pairs = []
    for root in map(Path, inputs):
        if root.is_file():
            pairs.append((root, Path(root.name)))
        elif root.is_dir():
            pairs += [(file, file.relative_to(root)) for file in image_files(root)]
        else:
            raise ImageReadError(f"{root}: no such file or folder")
    return pairs
