"""What decoding and encoding cost a video pipeline on these cores, whatever the network:
clip (b) of `video_peers.py` (a pan, Gaussian sigma 20, H.264 CRF 18 4:2:0: noise makes a
high bit rate) decoded by FFmpeg (PyAV) with 1 and 2 threads, and 60 restored frames
(`video --task denoise`) encoded by libx264 at CRF 18 with the presets the pipeline uses.

    python benchmarks/codec_cost.py --sizes 1280x720,1920x1080 \\
        --json benchmarks/results/codec_cost_dev_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from video_peers import make_clip  # noqa: E402

from jsnet_edge.images import list_images  # noqa: E402
from jsnet_edge.outputs import write_json  # noqa: E402
from jsnet_edge.restorer import Restorer  # noqa: E402
from jsnet_edge.video import VideoConfig, process  # noqa: E402


def decode_ms(path: Path, threads: int) -> float:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        v.thread_type, v.thread_count = "SLICE", threads
        t, n = time.perf_counter(), 0
        for f in c.decode(video=0):
            f.to_ndarray(format="yuv420p")
            n += 1
        return (time.perf_counter() - t) / n * 1000


def encode_ms(frames: list[np.ndarray], size, preset: str, out: Path) -> float:
    import av

    with av.open(str(out), "w") as c:
        s = c.add_stream(
            "libx264", rate=25, options={"crf": "18", "preset": preset, "threads": "1"}
        )
        s.width, s.height, s.pix_fmt = *size, "yuv420p"
        t = time.perf_counter()
        for i, a in enumerate(frames):
            f = av.VideoFrame.from_ndarray(a, format="yuv420p")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
        return (time.perf_counter() - t) / len(frames) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--test", type=Path, default=Path("data/test"))
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import av

    photos = list_images(args.test)
    restorer = Restorer("denoise-rt")
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for text in args.sizes.split(","):
            size = tuple(int(v) for v in text.split("x"))
            name = f"b-{text}"
            photo = photos[(len(name) * 7) % len(photos)]
            clip = make_clip(tmp, name, photo, size, args.frames, "gaussian", "18")
            mbit = clip.path.stat().st_size * 8 / (args.frames / 25) / 1e6
            restored = tmp / f"{name}-restored.mkv"
            process(clip.path, restored, restorer, VideoConfig(codec="ffv1"))
            with av.open(str(restored)) as c:
                frames = [
                    av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")
                    .reformat(format="yuv420p")
                    .to_ndarray()
                    for f in c.decode(video=0)
                ]
            row = {
                "bitrate_mbit_s": mbit,
                "decode_1_thread_ms": decode_ms(clip.path, 1),
                "decode_2_threads_ms": decode_ms(clip.path, 2),
            }
            for preset in ("superfast", "ultrafast"):
                row[f"encode_{preset}_1_thread_ms"] = encode_ms(frames, size, preset, tmp / "e.mp4")
            result[text] = row
            print(text, {k: round(v, 1) for k, v in row.items()}, flush=True)
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
