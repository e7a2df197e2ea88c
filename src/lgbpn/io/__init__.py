"""Reading and writing images without losing data; atomic file writes; finding image files.

Pixels come back as H x W x C arrays (C = 1 grey or 3 RGB) in the dtype they were stored in
(uint8, uint16 or float32), upright (EXIF/TIFF orientation applied), with any alpha channel
split off so the denoiser never sees it. Writes are atomic: a crash never leaves a half-written
output, and never clobbers an existing file with one.

Decisions a caller must know:

* TIFF integer samples other than uint8/uint16 (int16, uint32, ...) are read as uint16 when every
  value lies in 0..65535, and rejected otherwise; float16/float64 are read as float32.
* float32 pixels are written as they are only to TIFF. PNG stores them as 16-bit and JPEG as 8-bit
  integers (0..1 scaled to the integer range, values outside it clipped), with a logged warning.
* JPEG output is 8-bit at quality 95 with full-resolution chroma (4:4:4); uint16 is scaled to
  8 bit (round(v / 257)) and alpha is dropped with a warning.
* CMYK/YCbCr/LAB inputs are converted to RGB and their (non-RGB) ICC profile is dropped.
* BMP and WebP are read but not written: write them as .png or .tif.
* EXIF is carried to PNG and JPEG outputs whole (orientation reset to 1), and to TIFF outputs as
  tags of the main directory: camera, lens, exposure, ISO, dates, orientation 1 (io/exif.py). A
  TIFF input's own tags are not carried. Damaged EXIF is dropped with a warning instead of failing
  the read.
* Camera raw files (DNG, NEF, CR2, CR3, ARW, RAF, ORF, RW2, by suffix) are developed by LibRaw
  (rawpy) into 16-bit sRGB: as-shot white balance, the camera's colour matrix, the sRGB tone curve,
  no automatic brightening, upright (io/raw.py). They are read, never written.
* Images over MAX_PIXELS (400 megapixels) are refused as possible decompression bombs.
* A PNG's single transparent colour (tRNS) becomes an alpha channel.
* 16-bit PNGs are decoded and encoded by imagecodecs (libpng): Pillow reduces 16-bit colour to 8 bits.
* TIFF colour models other than grey and RGB (palette, CMYK, YCbCr, ...) are decoded by Pillow
  when it decodes them losslessly (8-bit or single-channel), and refused otherwise.
"""

from .atomic import atomic_path, atomic_write_bytes
from .image import MAX_PIXELS, RAW_SUFFIXES, SUPPORTED_SUFFIXES, WRITABLE_SUFFIXES, Image
from .read import read_image
from .walk import find_images, image_files
from .write import write_image

__all__ = ["MAX_PIXELS", "RAW_SUFFIXES", "SUPPORTED_SUFFIXES", "WRITABLE_SUFFIXES", "Image", "atomic_path", "atomic_write_bytes",
           "find_images", "image_files", "read_image", "write_image"]
