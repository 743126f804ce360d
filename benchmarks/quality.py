"""Quality of the zoo against the classic baselines, on photographs never used in training.

For every task the same degraded inputs go to the zoo model and to the baselines:
  denoise-gray (sigma 25): noisy input, BM3D;  denoise (colour, sigma 25): noisy input,
  CBM3D, OpenCV fastNlMeansDenoisingColored (best h of a small sweep);  jpeg (q 10): the
  JPEG input;  sr-x2 / sr-x4: bicubic, the authors' released checkpoints (converted from
  ../shared/official, not shipped).
Test photographs (benchmarks/data/README.md): the 25 of data/test (Debian packages that
share no source or photographer with the training data) and scikit-image's photographs,
none ever trained on; each downscaled to 512 px on its short side, then a 384 px centre
crop (the protocol of `calibrate` and benchmarks/int8.py).

    bash benchmarks/data/test-photos.sh data/test
    python benchmarks/quality.py [--json benchmarks/results/quality.json] [--pictures docs/images]

With --tasks, an existing --json file keeps the results of the tasks not run (when it was
measured on the same photographs).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from jsnet_edge.calibration.data import SKIMAGE_PHOTOS, prepare_photo
from jsnet_edge.degradations import (
    add_gaussian_noise,
    bicubic_downscale,
    imresize,
    jpeg_compress,
    modcrop,
)
from jsnet_edge.images import center_crop, list_images, load_image
from jsnet_edge.metrics import score as metrics_score
from jsnet_edge.outputs import write_json
from jsnet_edge.restorer import Restorer

SIGMA, QUALITY = 25.0, 10
NLM_SWEEP = (10, 15, 20, 25)  # fastNlMeansDenoisingColored strengths tried for the baseline


# scikit-image's photographs: the first 11 of the generic set `calibrate` uses without
# --data (never trained on; the INT8 benchmark therefore measures on data/test alone).
SKIMAGE_TEST = SKIMAGE_PHOTOS[:11]


def test_photos(test_dir: Path, crop: int) -> list[tuple[str, np.ndarray]]:
    from skimage import data

    if not test_dir.is_dir():
        raise SystemExit(f"{test_dir} is missing: bash benchmarks/data/test-photos.sh {test_dir}")
    photos = [(p.stem, load_image(p)) for p in list_images(test_dir)]
    photos += [(f"skimage-{n}", getattr(data, n)()) for n in SKIMAGE_TEST]
    return [(n, center_crop(prepare_photo(img, 3), crop)) for n, img in photos]


def score(out, ref, shave=0, mode="rgb"):
    """PSNR and SSIM by the one protocol (`jsnet_edge.metrics.score`); `out` is already
    8-bit, or the unclipped noisy input (not rounded, as the literature reports it)."""
    return metrics_score(out, ref, scale=max(shave, 1), mode=mode, rounded=False, with_ssim=True)


def to_uint8(x):
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.uint8)


def run_denoise(model: str, photos, gray: bool, pictures: Path | None) -> dict:
    import bm3d

    r = Restorer(model, backend="torch", color_order="rgb")
    rows = []
    for i, (name, img) in enumerate(photos):
        clean = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if gray else img
        noisy = add_gaussian_noise(clean, SIGMA, seed=i)
        mode = "y" if gray else "rgb"
        t = time.perf_counter()
        x = noisy[:, :, None] if noisy.ndim == 2 else noisy
        y = r.restore_array(np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32))
        ours = to_uint8(y[0].transpose(1, 2, 0)[:, :, 0] if gray else y[0].transpose(1, 2, 0))
        t_ours = time.perf_counter() - t
        row = {
            "image": name,
            "noisy": score(np.clip(noisy, 0, 255), clean, mode=mode),
            "jsnet": score(ours, clean, mode=mode),
            "jsnet_s": t_ours,
        }
        z = noisy / 255.0
        t = time.perf_counter()
        base = bm3d.bm3d(z, SIGMA / 255.0) if gray else bm3d.bm3d_rgb(z, SIGMA / 255.0)
        row["bm3d_s"] = time.perf_counter() - t
        row["bm3d"] = score(to_uint8(base * 255.0), clean, mode=mode)
        if not gray:
            noisy8 = cv2.cvtColor(to_uint8(noisy), cv2.COLOR_RGB2BGR)
            best = None
            for h in NLM_SWEEP:
                t = time.perf_counter()
                nl = cv2.fastNlMeansDenoisingColored(noisy8, None, h, h, 7, 21)
                dt = time.perf_counter() - t
                s = score(cv2.cvtColor(nl, cv2.COLOR_BGR2RGB), clean, mode=mode)
                if best is None or s[0] > best[0][0]:
                    best = (s, h, dt)
            row["nlmeans"], row["nlmeans_h"], row["nlmeans_s"] = best
        rows.append(row)
        if pictures and i == 0:
            picture(
                pictures / f"{'denoise-gray' if gray else 'denoise'}.png",
                clean,
                to_uint8(noisy),
                ours,
                f"noisy sigma {SIGMA:g}",
                row["noisy"][0],
                row["jsnet"][0],
            )
    return summarize(rows)


def run_jpeg(model: str, photos, pictures: Path | None) -> dict:
    r = Restorer(model, backend="torch", color_order="rgb")
    rows = []
    for i, (name, img) in enumerate(photos):
        jpg = jpeg_compress(img, QUALITY)
        ours = r(jpg)
        rows.append({"image": name, "jpeg": score(jpg, img), "jsnet": score(ours, img)})
        if pictures and i == 0:
            picture(
                pictures / "jpeg.png",
                img,
                jpg,
                ours,
                f"JPEG q{QUALITY}",
                rows[-1]["jpeg"][0],
                rows[-1]["jsnet"][0],
            )
    return summarize(rows)


def run_sr(model: str, scale: int, official: Path | None, photos, pictures: Path | None) -> dict:
    r = Restorer(model, backend="torch", color_order="rgb")
    authors = None
    ckpt = official / f"jsnet_sr_x{scale}_official.pt" if official else None
    if ckpt and ckpt.is_file():
        from jsnet_edge.models import load_official

        authors = Restorer(load_official(ckpt, scale), backend="torch", color_order="rgb")
    rows = []
    for i, (name, img) in enumerate(photos):
        hr = modcrop(img, scale)
        lr = bicubic_downscale(hr, scale)
        ours = r(lr)
        row = {
            "image": name,
            "bicubic": score(imresize(lr, scale), hr, scale, "y"),
            "jsnet": score(ours, hr, scale, "y"),
        }
        if authors:
            row["authors"] = score(authors(lr), hr, scale, "y")
        rows.append(row)
        if pictures and i == 0:
            picture(
                pictures / f"sr-x{scale}.png",
                hr,
                imresize(lr, scale),
                ours,
                f"bicubic x{scale}",
                row["bicubic"][0],
                row["jsnet"][0],
            )
    return summarize(rows)


def summarize(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, tuple)]
    mean = {
        k: [float(np.mean([r[k][0] for r in rows])), float(np.mean([r[k][1] for r in rows]))]
        for k in keys
    }
    extra = {
        k: float(np.mean([r[k] for r in rows]))
        for k, v in rows[0].items()
        if k.endswith("_s") or k.endswith("_h")
    }
    return {"mean": mean, "timing_and_params": extra, "rows": rows}


def picture(path: Path, clean, degraded, restored, label: str, p_in: float, p_out: float):
    """A 3-panel crop (degraded | jsnet-edge | clean) with PSNR captions, for the README."""

    def crop(a):
        a = a if a.ndim == 3 else np.repeat(a[:, :, None], 3, 2)
        h, w = a.shape[:2]
        s = min(h, w, 192)
        return a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s].copy()

    panels = [crop(degraded), crop(restored), crop(clean)]
    texts = [f"{label}: {p_in:.2f} dB", f"jsnet-edge: {p_out:.2f} dB", "original"]
    for p, t in zip(panels, texts, strict=True):
        cv2.rectangle(p, (0, 0), (p.shape[1], 18), (0, 0, 0), -1)
        cv2.putText(p, t, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(panels, 1), cv2.COLOR_RGB2BGR))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", default=None, help="folder of zoo models (default: the package's)")
    ap.add_argument("--official", type=Path, default=Path("../shared/official"))
    ap.add_argument("--test", type=Path, default=Path("data/test"))
    ap.add_argument("--crop", type=int, default=384)
    ap.add_argument("--tasks", default="denoise-gray,denoise,jpeg,sr-x2,sr-x4")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--pictures", type=Path, default=None)
    args = ap.parse_args()
    photos = test_photos(args.test, args.crop)

    def model(name: str) -> str:
        return str(Path(args.zoo) / f"{name}.safetensors") if args.zoo else name

    results = {}
    for task in args.tasks.split(","):
        t = time.perf_counter()
        if task in ("denoise", "denoise-gray"):
            results[task] = run_denoise(model(task), photos, task == "denoise-gray", args.pictures)
        elif task == "jpeg":
            results[task] = run_jpeg(model(task), photos, args.pictures)
        else:
            scale = int(task[-1])
            results[task] = run_sr(model(task), scale, args.official, photos, args.pictures)
        means = results[task]["mean"]
        line = ", ".join(f"{k} {v[0]:.2f} dB / {v[1]:.4f}" for k, v in means.items())
        print(f"{task:<13} {line}  ({time.perf_counter() - t:.0f} s)", flush=True)
    print(
        f"\n{len(photos)} test photographs ({args.crop}px centre crops): "
        + ", ".join(n for n, _ in photos)
    )
    if args.json:
        names = [n for n, _ in photos]
        if args.json.exists():  # a run of some tasks keeps the others' results (same photos)
            old = json.loads(args.json.read_text())
            if old.get("photos") == names and old.get("crop") == args.crop:
                results = {**old["results"], **results}
        data = {"photos": names, "crop": args.crop, "results": results}
        write_json(args.json, json.loads(json.dumps(data, default=float)))


if __name__ == "__main__":
    main()
