"""Noise as a camera hands it over: sensor noise that depends on the signal, carried in YUV
with 4:2:0 chroma, then shaped by a lossy encoder (H.264 as phones store video, or JPEG as
they store photos). The pieces `Degradation(noise="camera")` draws from, at random
strengths and in random combinations, like the practical degradation pipelines used to
train real-world restorers.

Encoding runs in memory through PyAV (libx264 ships in its wheels); each patch is encoded
as a short clip of the same scene with fresh noise per frame, and the last frame is kept,
so it is a predicted (P) frame, as nearly all frames of a real video are.
"""

from __future__ import annotations

import io

import cv2
import numpy as np

from jsnet_edge.errors import MissingDependencyError
from jsnet_edge.noise import add_gaussian_noise, add_poisson_gaussian_noise

# BT.601 full range, as JPEG and most camera pipelines use.
_RGB2YUV = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)
_YUV2RGB = np.linalg.inv(_RGB2YUV)


def yuv420_roundtrip(img: np.ndarray) -> np.ndarray:
    """RGB -> YUV with chroma at half resolution (2x2 average) -> RGB, on 0..255 floats:
    what storing an image in 4:2:0 does to its colour detail (and to colour noise)."""
    x = np.asarray(img, np.float32)
    if x.ndim == 2 or x.shape[2] == 1:
        return x
    yuv = x @ _RGB2YUV.T.astype(np.float32)
    h, w = x.shape[:2]
    for c in (1, 2):
        small = cv2.resize(
            yuv[:, :, c], (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA
        )
        yuv[:, :, c] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return yuv @ _YUV2RGB.T.astype(np.float32)


def h264_roundtrip(frames: list[np.ndarray], crf: int, preset: str = "veryfast") -> np.ndarray:
    """Encode RGB uint8 frames (same size, even sides) as H.264 4:2:0 at `crf` in memory and
    return the last decoded frame (RGB uint8): a P-frame of a real encode."""
    try:
        import av
    except ImportError:
        raise MissingDependencyError(
            "H.264 degradations need PyAV: pip install 'jsnet-edge[video]'"
        ) from None
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        s = out.add_stream(
            "libx264", rate=25, options={"crf": str(crf), "preset": preset, "tune": "zerolatency"}
        )
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.pts = i
            out.mux(s.encode(vf))
        out.mux(s.encode(None))
    buf.seek(0)
    last = None
    with av.open(buf, "r", format="h264") as inp:
        for frame in inp.decode(video=0):
            last = frame
    return last.to_ndarray(format="rgb24")


def jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    """RGB uint8 through OpenCV's JPEG (4:2:0) at `quality`."""
    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]


def camera_degrade(clean: np.ndarray, sigma: tuple[float, float], rng: np.random.Generator):
    """One camera-like degradation of a clean uint8 image (HxW or HxWx3), drawn at random:
    sensor noise (Poisson-Gaussian, gain 0.25..4 grey levels per electron with read noise
    1..8; or, one time in four, Gaussian with sigma in `sigma`), then one time in two
    H.264 4:2:0 at CRF 15..30 (a P-frame), one in four JPEG at quality 50..95, else stored
    losslessly (with 4:2:0 chroma half the time). Returns uint8, as a decoder gives it."""
    gray = clean.ndim == 2 or clean.shape[2] == 1
    rgb = np.repeat(clean.reshape(clean.shape[0], clean.shape[1], 1), 3, 2) if gray else clean
    if rng.random() < 0.25:
        s = float(rng.uniform(*sigma))

        def noisy():
            return add_gaussian_noise(rgb, s, rng=rng, clip=True)
    else:
        gain = float(np.exp(rng.uniform(np.log(0.25), np.log(4.0))))
        read = float(rng.uniform(1.0, 8.0))

        def noisy():
            return add_poisson_gaussian_noise(rgb, gain, read, rng=rng)

    store = rng.random()
    if store < 0.5:
        h, w = rgb.shape[:2]
        ph, pw = h % 2, w % 2
        frames = []
        for _ in range(3):  # the same scene, fresh noise: the last is a P-frame
            f = (noisy() + 0.5).astype(np.uint8)
            frames.append(np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else f)
        out = h264_roundtrip(frames, int(rng.integers(15, 31)))[:h, :w]
    elif store < 0.75:
        out = jpeg_roundtrip((noisy() + 0.5).astype(np.uint8), int(rng.integers(50, 96)))
    else:
        x = noisy()
        if rng.random() < 0.5:
            x = np.clip(yuv420_roundtrip(x), 0, 255)
        out = (x + 0.5).astype(np.uint8)
    if gray:
        out = out[:, :, :1] if clean.ndim == 3 else out[:, :, 0]
    return out
