"""What a benchmark run measures: models, sizes, and the limits that keep the default run short."""

from dataclasses import dataclass

MODELS = ("lgbpn", "lgbpn-s", "apbsn")
SIZES = (256, 512, 1024)
# The default run must end in ~10 minutes on 2 cores. The full-size networks (~5M multiply-adds per
# pixel, R3 9x that) run at 256x256 with R3 off; the shipped slim model covers every size and the
# photo; R3 on is measured up to R3_MAX_SIZE and extrapolated (labelled) above. `--models`/`--sizes`
# given explicitly run the whole matrix.
DEFAULT_PLAN = {"lgbpn": (256,), "apbsn": (256,), "lgbpn-s": SIZES}
DEFAULT_R3_MODELS = ("lgbpn-s",)
DEFAULT_PHOTO_MODELS = ("lgbpn-s",)
R3_MAX_SIZE = 256
# One training step at the default crop; batch 1 for the full-size networks (~2 min a step at batch 8).
TRAIN_BATCH = {"lgbpn": 1, "apbsn": 1}
TRAIN_PRECISIONS = ("fp32", "bf16")  # both, whatever the device: the row says whether bf16 is native
PHOTO = (3000, 4000)  # (H, W): a 12-megapixel photo
QUICK_SIZE = 40  # above LG-BPN's smallest test size (32), which the reference path needs
QUICK_FULL_MODEL = "lgbpn-s"  # quick mode runs R3 (~9 passes) and training for this model only
QUICK_TRAIN = (40, 1)  # crop, batch
SUMMARY_MODEL = "lgbpn"
# The reference path needs ~6.8 GB at 256x256 and 4x that per 4x pixels (beyond 24 GiB at 512x512):
# it is not run on larger images, whose rows carry an estimate instead.
REFERENCE_MAX_PIXELS = 256 * 256
RATIO_TILE = 256  # the tile on which R3-on / R3-off is measured to extrapolate the photo's R3 time
MATMUL_N = 2048
LONG_RUN_S = 20.0  # a warm-up longer than this is the one timed run: medians of minutes help nobody

# --- `lgbpn bench --compare`: what a user would pick instead, side by side -------------------------
# Its own mode (COMPARE_PLAN takes as long as the default run again): not part of the default run.


@dataclass(frozen=True)
class Method:
    """One denoiser in the comparison, run as its users would run it."""

    name: str
    kind: str  # network | opencv | bm3d | oidn: how alternatives.py runs it
    settings: str
    module: str = ""  # the optional package it needs, "" for lgbpn itself
    package: str = ""  # that package on PyPI, for the "not installed" note
    model: str = ""  # shipped weights; where they are not shipped, random weights of `arch` (timing only)
    arch: str = ""
    r3: bool = False
    on_crop: bool = False  # too slow for the photo in the run's budget: timed on a crop, extrapolated


STUDENT = "lgbpn-fast"
COMPARE_METHODS = (
    Method("student", "network", "lgbpn-fast (U-Net on 2x2 sub-images), default options", model=STUDENT, arch="unet-half"),
    Method("teacher", "network", "lgbpn-s, R3 off", model="lgbpn-s", arch="lgbpn-s", on_crop=True),
    Method("teacher+r3", "network", "lgbpn-s, R3 on (its default)", model="lgbpn-s", arch="lgbpn-s", r3=True,
           on_crop=True),
    Method("opencv-nlm", "opencv", "cv2.fastNlMeansDenoisingColored, h 10, hColor 10, windows 7/21",
           module="cv2", package="opencv-python-headless"),
    # BM3D needs the noise level: the user's usual estimate, as benchmarks/quality.py.
    Method("bm3d", "bm3d", "bm3d.bm3d_rgb, sigma from skimage's estimate_sigma", module="bm3d", package="bm3d",
           on_crop=True),
    # srgb: our photos are sRGB-encoded, which OIDN's LDR mode must be told (its default is linear).
    Method("oidn-fast", "oidn", "Open Image Denoise RT filter, quality fast, hdr off, cleanAux off, srgb on",
           module="pyoidn", package="pyoidn"),
)
COMPARE_THREADS = 2  # the target is stated for 2 threads
COMPARE_SUBSETS = {"sidd": "sidd_samples", "polyu": "polyu"}  # those of ../shared/data with clean references
COMPARE_DATA = "../shared/data"
TARGET_PEAK_MB = 2048
FOLDER_PHOTOS = 6  # the pipeline's folder: this many photos, each mirror-tiled from its own noisy image
WARMUP_SIDE = 64  # each method's untimed first call, on the photo's centre crop of this side


@dataclass(frozen=True)
class ComparePlan:
    photo: tuple[int, int]  # (H, W), mirror-tiled from the first noisy PolyU image
    crop: int  # side of the photo's centre crop on which the `on_crop` methods are timed
    images: int | None  # images per subset for PSNR, spread evenly over the sorted names; None: all
    image_crop: int | None = None  # quick: PSNR on each image's centre crop of this side


# ~10 min on 2 idle cores, most of it the teacher with R3 (~2 min per megapixel) and BM3D (~1 min).
COMPARE_PLAN = ComparePlan(photo=PHOTO, crop=512, images=3)
QUICK_COMPARE_PLAN = ComparePlan(photo=(96, 128), crop=48, images=1, image_crop=48)
