"""Realistic camera noise on clean photos, for training: the in-camera pipeline run backwards, the
sensor's noise added, and the pipeline run forwards again.

Backwards (as in Brooks et al., "Unprocessing images for learned raw denoising", CVPR 2019): inverse
tone curve, inverse colour matrix, inverse white balance and exposure, Bayer mosaic. The sensor: shot
noise (Poisson in photo-electrons) and read noise, whose levels follow real cameras over ISO 100 to
12800, optionally row and fixed-pattern noise, and the ADC's quantisation. Forwards: demosaicking
(bilinear or Malvar-He-Cutler), white balance, colour matrix, tone curve, in-camera chroma noise
reduction and sharpening, 8 bits, and JPEG at a random quality and chroma subsampling.

The clean target is the same photo through the same forward pipeline without the noise (and without
JPEG), so its tone and colour match the noisy image's exactly: what is left between them is noise.

Everything a capture draws is a `Camera`; `simulate` draws one from its rng unless given one, so a
result is a pure function of the photo and the rng's state.
"""

import io
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter

# XYZ -> camera matrices of four cameras (Brooks et al. 2019); a capture's matrix is a random convex
# combination of them.
XYZ_TO_CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                       [0.2126729, 0.7151522, 0.0721750],
                       [0.0193339, 0.1191920, 0.9503041]])

# Sensors: photo-electrons at white (the full well) at ISO 100, log-uniform from a small phone
# sensor to a full-frame one; a capture's ISO is log-uniform over ISO_RANGE. The shot-noise gain K
# (variance per unit of white, per unit of signal) is then ISO / 100 / FULL_WELL.
FULL_WELL = (4000.0, 60000.0)
ISO_RANGE = (100.0, 12800.0)
# Read noise follows the shot-noise gain across cameras: log read std = a log K + b + N(0, s), the
# fit of Brooks et al. (their variance line 2.18 log K + 1.20, s 0.26, halved for the std), the
# log-linear relation ELD (Wei et al., CVPR 2020) calibrates per camera.
READ_LINE = (1.09, 0.60, 0.13)
WB_GAINS = (1.5, 2.5)  # red and blue white-balance gains
EXPOSURE = (1.0, 1.5)  # digital gain: white in the photo sits this far below the sensor's white
TONES = ("srgb", "gamma", "filmic")
GAMMA = (1.8, 2.6)
JPEG_QUALITY = (60, 98)
JPEG_SHARE = 0.7
# Shot noise is drawn Poisson where a photosite expects fewer photo-electrons than this, and Gaussian of
# the same variance elsewhere (indistinguishable there, and much faster to draw).
POISSON_BELOW = 30.0
YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])  # JPEG's (BT.601)

@dataclass(frozen=True)
class Camera:
    """Everything one simulated capture draws (`sample_camera`)."""

    tone: str  # "srgb", "gamma" (a power law) or "filmic" (a gamma, then a smoothstep S-curve)
    gamma: float
    rgb_to_cam: np.ndarray  # (3, 3) linear sRGB -> camera RGB, rows summing to 1 (white stays white)
    gains: tuple[float, float, float]  # white balance x exposure, per camera channel
    phase: tuple[int, int]  # where the mosaic's red photosite sits, mod 2
    iso: float
    shot: float  # K: shot-noise variance per unit of signal, white = 1 (1 / photo-electrons at white)
    read: float  # read-noise std, white = 1
    row: float  # std of an offset shared by each sensor row (banding); 0 = none
    column: float  # std of a fixed offset per sensor column (fixed-pattern noise); 0 = none
    prnu: float  # std of the photosites' relative gain (fixed-pattern, photo-response non-uniformity)
    bits: int  # the ADC's; 0 = no quantisation
    demosaic: str  # "bilinear" or "malvar"
    chroma_blur: float  # sigma (pixels) of in-camera chroma noise reduction; 0 = none
    luma_nr: float  # in-camera edge-preserving (bilateral) luma noise reduction: its range sigma in
    # multiples of the capture's noise at mid grey (a camera tunes it per ISO); 0 = none
    sharpen: float  # unsharp-mask amount on luma; 0 = none
    sharpen_sigma: float
    jpeg_quality: int | None  # None = no JPEG
    subsampling: str  # JPEG chroma: "4:4:4" or "4:2:0"

    def noiseless(self) -> "Camera":
        """The same capture without sensor noise (nor quantisation): the clean target's path."""
        return replace(self, shot=0.0, read=0.0, row=0.0, column=0.0, prnu=0.0, bits=0)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def sample_camera(rng: np.random.Generator, iso: float | None = None) -> Camera:
    """A random capture: a camera (colour, sensor) at a random ISO (or at `iso`; the rng draws the same
    numbers either way, so the same rng state at two ISOs gives the same camera)."""
    weights = rng.uniform(size=len(XYZ_TO_CAMS))
    rgb_to_cam = np.tensordot(weights / weights.sum(), XYZ_TO_CAMS, axes=1) @ RGB_TO_XYZ
    rgb_to_cam /= rgb_to_cam.sum(axis=1, keepdims=True)
    red, blue = rng.uniform(*WB_GAINS, size=2)
    exposure = rng.uniform(*EXPOSURE)
    full_well = _log_uniform(rng, *FULL_WELL)
    drawn_iso = _log_uniform(rng, *ISO_RANGE)
    iso = drawn_iso if iso is None else float(iso)
    shot = iso / 100.0 / full_well
    a, b, s = READ_LINE
    read = float(np.exp(a * np.log(shot) + b + rng.normal(0.0, s)))
    row = read * rng.uniform(0.05, 0.3) if rng.random() < 0.3 else 0.0
    column = read * rng.uniform(0.05, 0.2) if rng.random() < 0.2 else 0.0
    prnu = rng.uniform(0.002, 0.01) if rng.random() < 0.3 else 0.0
    jpeg = rng.random() < JPEG_SHARE
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    return Camera(
        tone=TONES[int(rng.integers(len(TONES)))], gamma=float(rng.uniform(*GAMMA)), rgb_to_cam=rgb_to_cam,
        gains=(float(red * exposure), float(exposure), float(blue * exposure)),
        phase=(int(rng.integers(2)), int(rng.integers(2))), iso=iso, shot=shot, read=read, row=float(row),
        column=float(column), prnu=float(prnu), bits=int(rng.choice([12, 14])),
        demosaic=("bilinear", "malvar")[int(rng.integers(2))],
        chroma_blur=float(rng.uniform(0.5, 2.5)) if rng.random() < 0.5 else 0.0,
        luma_nr=float(rng.uniform(0.5, 2.5)) if rng.random() < 0.5 else 0.0,
        sharpen=float(rng.uniform(0.2, 1.0)) if rng.random() < 0.7 else 0.0, sharpen_sigma=float(rng.uniform(0.6, 1.5)),
        jpeg_quality=quality if jpeg else None, subsampling=("4:4:4", "4:2:0")[int(rng.integers(2))],
    )


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3 - 2 * x)


def _inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    return 0.5 - np.sin(np.arcsin(1 - 2 * y) / 3)


def tone_forward(linear: np.ndarray, camera: Camera) -> np.ndarray:
    """Linear 0..1 -> display 0..1 by the capture's tone curve."""
    linear = np.clip(linear, 0, 1)
    if camera.tone == "srgb":
        return linear_to_srgb(linear)
    encoded = linear ** (1 / camera.gamma)
    return _smoothstep(encoded) if camera.tone == "filmic" else encoded


def tone_inverse(display: np.ndarray, camera: Camera) -> np.ndarray:
    display = np.clip(display, 0, 1)
    if camera.tone == "srgb":
        return srgb_to_linear(display)
    return (_inverse_smoothstep(display) if camera.tone == "filmic" else display) ** camera.gamma


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def bayer_masks(h: int, w: int, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(H, W, 3) one-hot RGGB colour filter array whose red photosite is at (phase[0], phase[1]) mod 2
    (a sensor read out from another corner: GRBG, GBRG or BGGR)."""
    dy, dx = phase
    cfa = np.zeros((h, w, 3), dtype=bool)
    cfa[dy::2, dx::2, 0] = True
    cfa[dy::2, 1 - dx :: 2, 1] = True
    cfa[1 - dy :: 2, dx::2, 1] = True
    cfa[1 - dy :: 2, 1 - dx :: 2, 2] = True
    return cfa


def _neighbour_sums(mosaic: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sums of each photosite's neighbours in a (..., H, W) mosaic, mirrored at the edges (which keeps
    the Bayer phase): 1 apart along the row, along the column, 2 apart along each, and the 4 diagonal."""
    h, w = mosaic.shape[-2:]
    padded = np.pad(mosaic, [(0, 0)] * (mosaic.ndim - 2) + [(2, 2), (2, 2)], mode="reflect")

    def shifted(dy: int, dx: int) -> np.ndarray:
        return padded[..., 2 + dy : 2 + dy + h, 2 + dx : 2 + dx + w]

    return (shifted(0, -1) + shifted(0, 1), shifted(-1, 0) + shifted(1, 0), shifted(0, -2) + shifted(0, 2),
            shifted(-2, 0) + shifted(2, 0), shifted(-1, -1) + shifted(-1, 1) + shifted(1, -1) + shifted(1, 1))


def _assemble(mosaic: np.ndarray, cfa: np.ndarray, green_at_rb: np.ndarray, along_row: np.ndarray,
              along_column: np.ndarray, across: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) from the mosaic and the estimates of each missing colour: green at red and blue
    photosites; red (blue) at a green photosite from its own row's, or its own column's, red (blue)
    photosites; red at blue photosites and blue at red ones."""
    red_rows, red_cols = cfa[..., 0].any(axis=1)[:, None], cfa[..., 0].any(axis=0)[None, :]
    green = np.where(cfa[..., 1], mosaic, green_at_rb)
    red = np.where(cfa[..., 0], mosaic, np.where(red_rows, along_row, np.where(red_cols, along_column, across)))
    blue = np.where(cfa[..., 2], mosaic, np.where(~red_rows, along_row, np.where(~red_cols, along_column, across)))
    return np.stack([red, green, blue], axis=-1)


def demosaic_bilinear(mosaic: np.ndarray, cfa: np.ndarray) -> np.ndarray:
    """(..., H, W) mosaic(s) -> (..., H, W, 3): each colour's missing photosites are the mean of its neighbours."""
    row1, col1, _, _, diagonal = _neighbour_sums(mosaic)
    return _assemble(mosaic, cfa, (row1 + col1) / 4, row1 / 2, col1 / 2, diagonal / 4)


def demosaic_malvar(mosaic: np.ndarray, cfa: np.ndarray) -> np.ndarray:
    """(..., H, W) mosaic(s) -> (..., H, W, 3) by Malvar, He & Cutler (ICASSP 2004), "High-quality linear
    interpolation for demosaicing of Bayer-patterned color images": bilinear corrected by the Laplacian
    of the photosite's own colour (their 5x5 filters, written as sums of neighbours)."""
    row1, col1, row2, col2, diagonal = _neighbour_sums(mosaic)
    green_at_rb = (4 * mosaic + 2 * (row1 + col1) - (row2 + col2)) / 8
    along_row = (5 * mosaic + 4 * row1 - row2 - diagonal + col2 / 2) / 8
    along_column = (5 * mosaic + 4 * col1 - col2 - diagonal + row2 / 2) / 8
    across = (6 * mosaic + 2 * diagonal - 1.5 * (row2 + col2)) / 8
    return _assemble(mosaic, cfa, green_at_rb, along_row, along_column, across)


def unprocess(srgb: np.ndarray, camera: Camera) -> np.ndarray:
    """(H, W, 3) display 0..1 -> (H, W, 3) linear camera RGB 0..1 (the scene as the sensor's three colours
    see it at every photosite, the sensor's white at 1)."""
    camera_rgb = tone_inverse(srgb, camera) @ camera.rgb_to_cam.T.astype(np.float32)
    # Saturated colours fall below black in the camera's space: kept there, as a sensor's values below
    # black are (so the noiseless pipeline gives the photo back); white clips, as the sensor saturates.
    return np.minimum(camera_rgb / np.asarray(camera.gains, np.float32), 1)


def sensor_noise(raw: np.ndarray, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """(H, W) clean linear mosaic -> as the sensor reads it: shot, read, row and fixed-pattern noise,
    quantised to the ADC's bits. Values below black stay (cameras keep them up to the last clip)."""
    h, w = raw.shape
    if camera.prnu:
        raw = raw * (1 + camera.prnu * rng.standard_normal(raw.shape, dtype=np.float32))
    if camera.shot:
        electrons = np.maximum(raw, 0) / np.float32(camera.shot)  # none below black
        shot = np.sqrt(electrons) * rng.standard_normal(raw.shape, dtype=np.float32)
        few = electrons < POISSON_BELOW
        shot[few] = rng.poisson(electrons[few]) - electrons[few]
        raw = raw + shot * np.float32(camera.shot)
    noise = camera.read * rng.standard_normal(raw.shape, dtype=np.float32)
    if camera.row:
        noise += rng.normal(0, camera.row, (h, 1)).astype(np.float32)
    if camera.column:
        noise += rng.normal(0, camera.column, (1, w)).astype(np.float32)
    if not camera.bits:
        return raw + noise
    levels = 2**camera.bits - 1
    return np.round((raw + noise) * levels) / np.float32(levels)


def _rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    return rgb @ YCBCR.T.astype(rgb.dtype)


def _ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    return ycc @ np.linalg.inv(YCBCR).T.astype(ycc.dtype)


def mid_grey_noise(camera: Camera) -> float:
    """The noise std (display units, 0..1) that the capture puts on a mid-grey patch, before noise reduction."""
    linear = float(tone_inverse(np.float64(0.5), camera))
    raw = linear / camera.gains[1]
    std = np.sqrt(camera.shot * raw + camera.read**2) * camera.gains[1]
    step = 1e-3
    slope = (tone_forward(np.float64(linear + step), camera) - tone_forward(np.float64(linear - step), camera)) / (2 * step)
    return float(std * slope)


def _bilateral(planes: np.ndarray, spatial: float, tonal: float, radius: int = 2) -> np.ndarray:
    """(N, H, W) planes through a (2 radius + 1)^2 bilateral filter: neighbours averaged by distance and by
    closeness of value, so noise below `tonal` is smoothed and edges above it kept."""
    h, w = planes.shape[-2:]
    padded = np.pad(planes, ((0, 0), (radius, radius), (radius, radius)), mode="reflect")
    total, weights = np.zeros_like(planes), np.zeros_like(planes)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            near = padded[:, radius + dy : radius + dy + h, radius + dx : radius + dx + w]
            weight = np.exp(-(dy * dy + dx * dx) / (2 * spatial**2) - (near - planes) ** 2 / np.float32(2 * tonal**2))
            total += weight * near
            weights += weight
    return total / weights


def process(raws: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, H, W) linear raw mosaics -> (N, H, W, 3) display 0..1 through the camera's forward pipeline."""
    cfa = bayer_masks(*raws.shape[-2:], camera.phase)
    return finish((demosaic_malvar if camera.demosaic == "malvar" else demosaic_bilinear)(raws, cfa), camera)


def finish(rgb: np.ndarray, camera: Camera) -> np.ndarray:
    """(N, H, W, 3) linear camera RGB -> display 0..1: the forward pipeline after demosaicking."""
    rgb = rgb * np.asarray(camera.gains, np.float32)
    rgb = rgb @ np.linalg.inv(camera.rgb_to_cam).T.astype(np.float32)
    display = tone_forward(rgb, camera).astype(np.float32)
    tonal = camera.luma_nr * mid_grey_noise(camera)
    if camera.chroma_blur or tonal or camera.sharpen:
        ycc = _rgb_to_ycbcr(display)
        if camera.chroma_blur:
            s = camera.chroma_blur
            ycc[..., 1:] = gaussian_filter(ycc[..., 1:], (0, s, s, 0), mode="mirror", truncate=3)
        if tonal:
            ycc[..., 0] = _bilateral(ycc[..., 0], 1.0, tonal)
        if camera.sharpen:
            s = camera.sharpen_sigma
            luma = ycc[..., 0]
            ycc[..., 0] = luma + camera.sharpen * (luma - gaussian_filter(luma, (0, s, s), mode="mirror", truncate=3))
        display = _ycbcr_to_rgb(ycc)
    return np.clip(display, 0, 1)


def _to_uint8(display: np.ndarray) -> np.ndarray:
    return np.floor(display * 255 + 0.5).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    buffer = io.BytesIO()
    PILImage.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(PILImage.open(buffer).convert("RGB"))


def simulate(clean: np.ndarray, rng: np.random.Generator, camera: Camera | None = None,
             scene_target: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Float (H, W, 3) clean sRGB photo in 0..1 -> (noisy uint8 (H, W, 3) as the camera would save it,
    clean target float32 (H, W, 3) in 0..1: the same capture without noise, nor JPEG).

    The target is demosaicked as the noisy image is, as the references of real noisy photos are (means of
    many captures through the camera's pipeline). With `scene_target`, it is the scene instead: every
    colour at every pixel, the forward pipeline run without the mosaic, so that the detail the mosaic
    loses is to be given back too."""
    if clean.ndim != 3 or clean.shape[-1] != 3:
        raise ValueError(f"simulate needs an (H, W, 3) RGB image, got shape {clean.shape}")
    camera = sample_camera(rng) if camera is None else camera
    scene = unprocess(np.clip(clean, 0, 1).astype(np.float32), camera)
    raw = (scene * bayer_masks(*clean.shape[:2], camera.phase)).sum(axis=-1, dtype=np.float32)
    if scene_target:
        noisy, target = process(sensor_noise(raw, camera, rng)[None], camera)[0], finish(scene[None], camera)[0]
    else:
        noisy, target = process(np.stack([sensor_noise(raw, camera, rng), raw]), camera)
    noisy = _to_uint8(noisy)
    if camera.jpeg_quality is not None:
        noisy = _jpeg(noisy, camera.jpeg_quality, camera.subsampling)
    return noisy, target
