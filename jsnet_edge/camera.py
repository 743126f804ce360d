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
    return h264_clip(frames, crf, preset)[-1]


def h264_clip(frames: list[np.ndarray], crf: int, preset: str = "veryfast") -> list[np.ndarray]:
    """Encode RGB uint8 frames (same size, even sides) as H.264 4:2:0 at `crf` in memory and
    return every decoded frame (RGB uint8): an I-frame, then P-frames."""
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
    with av.open(buf, "r", format="h264") as inp:
        return [frame.to_ndarray(format="rgb24") for frame in inp.decode(video=0)]


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
    H.264 4:2:0 at CRF 15..30 (a P-frame: the image is encoded as three frames of a still
    scene, each with fresh noise, and the last is kept), one in four JPEG at quality 50..95,
    else stored losslessly (with 4:2:0 chroma half the time). Returns uint8, as a decoder
    gives it."""
    return camera_degrade_clip([clean] * 3, sigma, rng)[-1]


def camera_degrade_clip(
    clean: list[np.ndarray], sigma: tuple[float, float], rng: np.random.Generator
) -> list[np.ndarray]:
    """`camera_degrade` of a clip (clean uint8 frames of one size), as one camera records
    it: one noise model and strength and one way of storing for the whole clip, fresh noise
    in every frame, and H.264 over the clip (an I-frame, then P-frames)."""
    first = clean[0]
    gray = first.ndim == 2 or first.shape[2] == 1
    h, w = first.shape[:2]

    def rgb(c: np.ndarray) -> np.ndarray:
        return np.repeat(c.reshape(h, w, 1), 3, 2) if gray else c

    if rng.random() < 0.25:
        s = float(rng.uniform(*sigma))

        def noisy(c):
            return add_gaussian_noise(rgb(c), s, rng=rng, clip=True)
    else:
        gain = float(np.exp(rng.uniform(np.log(0.25), np.log(4.0))))
        read = float(rng.uniform(1.0, 8.0))

        def noisy(c):
            return add_poisson_gaussian_noise(rgb(c), gain, read, rng=rng)

    store = rng.random()
    if store < 0.5:
        ph, pw = h % 2, w % 2
        frames = []
        for c in clean:
            f = (noisy(c) + 0.5).astype(np.uint8)
            frames.append(np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else f)
        outs = [f[:h, :w] for f in h264_clip(frames, int(rng.integers(15, 31)))]
    elif store < 0.75:
        q = int(rng.integers(50, 96))
        outs = [jpeg_roundtrip((noisy(c) + 0.5).astype(np.uint8), q) for c in clean]
    else:
        chroma = rng.random() < 0.5
        outs = []
        for c in clean:
            x = noisy(c)
            if chroma:
                x = np.clip(yuv420_roundtrip(x), 0, 255)
            outs.append((x + 0.5).astype(np.uint8))
    if gray:
        outs = [o[:, :, :1] if first.ndim == 3 else o[:, :, 0] for o in outs]
    return outs
