"""Which files a video run reads and writes, checked before any work: the default output
name, and every refusal that must come before loading a model (which takes seconds)."""

from __future__ import annotations

from pathlib import Path

from jsnet_edge.errors import OptionError
from jsnet_edge.outputs import check_output, same_file
from jsnet_edge.video.config import VideoConfig
from jsnet_edge.video.preview import has_gui
from jsnet_edge.video.source import open_file, parse_source
from jsnet_edge.video.writers import choose_codec


def default_output(src: str | int | Path) -> Path:
    """`IN_restored.mp4` beside a file input; `cameraN_restored.mp4` here for a camera."""
    kind, what = parse_source(src)
    if kind == "file":
        p = Path(what)
        return p.with_name(f"{p.stem}_restored.mp4")
    if kind == "camera":
        return Path(f"camera{what}_restored.mp4")
    raise OptionError(f"give an output file (-o) for the stream {what}")


def check_paths(src: str | int | Path, dst: str | Path, config: VideoConfig) -> None:
    """Refuse, before any work (loading a model takes seconds), an input file that cannot
    be read, outputs that would overwrite the input or an existing file, and containers or
    codecs we cannot write."""
    kind, what = parse_source(src)
    inputs = [Path(what)] if kind == "file" else []
    if kind == "file":
        cap = open_file(Path(what), opencv=None)
        if cap is not None:
            cap.release()
    dst = Path(dst)
    check_output(dst, inputs=inputs, overwrite=config.overwrite)
    choose_codec(dst, config.codec, config.crf, config.chroma)
    if config.window and not has_gui():
        raise OptionError(
            "this OpenCV has no GUI (opencv-python-headless), so it cannot show "
            "a preview window; give --preview a file (e.g. preview.mp4)"
        )
    if config.preview_path is not None:
        if same_file(config.preview_path, dst):
            raise OptionError(
                f"the preview {config.preview_path} is the output file itself; give the preview "
                "another name"
            )
        check_output(
            config.preview_path, inputs=inputs + [dst], overwrite=config.overwrite, what="preview"
        )
    if config.stats_path is not None:
        extra = [config.preview_path] if config.preview_path is not None else []
        check_output(
            Path(config.stats_path),
            inputs=inputs + [dst] + extra,
            overwrite=config.overwrite,
            what="stats file",
        )
