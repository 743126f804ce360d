"""Restoring image files: which inputs go to which outputs, checked before any work, then
restored one by one through the output guard. What `jsnet-edge image` runs, for the
Python API as well."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from jsnet_edge.errors import OptionError
from jsnet_edge.images import IMAGE_SUFFIXES, is_image_path, list_images, load_image, save_image
from jsnet_edge.outputs import check_output
from jsnet_edge.restorer import Restorer


def plan_image_outputs(
    inputs: Iterable[str | Path], output: str | Path, *, overwrite: bool = False
) -> list[tuple[Path, Path]]:
    """(input, output) pairs for image files and folders of images.

    One input file and an output with an image extension: that file. Otherwise `output` is
    a folder and each image keeps its name there. Refuses, before anything is restored,
    missing inputs, empty folders, two inputs of one name, an output that is an input, and
    existing outputs without `overwrite`.
    """
    output = Path(output)
    sources: list[Path] = []
    from_folder = False
    for p in map(Path, inputs):
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise OptionError(f"folder {p} holds no images")
            sources += found
            from_folder = True
        elif p.exists():
            sources.append(p)
        else:
            raise OptionError(f"input {p} does not exist")
    if not sources:
        raise OptionError("give at least one image or folder of images")
    if output.suffix and not is_image_path(output) and not output.is_dir():
        raise OptionError(
            f"cannot write {output.suffix} images ({output.name}); name an output file with one "
            f"of {', '.join(IMAGE_SUFFIXES)}, or an output folder"
        )
    single = len(sources) == 1 and not from_folder and is_image_path(output)
    if not single and is_image_path(output):
        raise OptionError(f"{len(sources)} inputs need an output folder, not the file {output}")
    if single:
        targets = [output]
    else:
        dup = [n for n, k in Counter(s.name for s in sources).items() if k > 1]
        if dup:
            raise OptionError(
                f"several inputs are named {sorted(dup)[0]}; restore them into separate folders"
            )
        targets = [output / s.name for s in sources]
    # Linear: each target is compared with the inputs through one set of resolved paths
    # (and by inode where it exists), not with every input in turn.
    resolved = {s.resolve(): s for s in sources}
    inodes = {(st.st_dev, st.st_ino): s for s in sources if (st := _stat(s)) is not None}
    for t in targets:
        st = _stat(t)
        same = resolved.get(t.resolve()) or (
            inodes.get((st.st_dev, st.st_ino)) if st is not None else None
        )
        check_output(t, overwrite=overwrite, inputs=[same] if same is not None else ())
    return list(zip(sources, targets, strict=True))


def _stat(p: Path):
    try:
        return p.stat()
    except OSError:
        return None


def restore_images(
    restorer: Restorer,
    plan: list[tuple[Path, Path]],
    *,
    overwrite: bool = False,
    progress: bool = False,
    on_done: Callable[[Path, Path], None] | None = None,
) -> list[Path]:
    """Restore each (input, output) pair of `plan` (see `plan_image_outputs`). Images are
    read and written in the restorer's colour order, so a BGR restorer (OpenCV's order)
    never converts: a very large photograph costs no extra copy."""
    from tqdm import tqdm

    bar = tqdm(plan, unit="img", disable=not progress or len(plan) < 2, file=sys.stderr)
    written = []
    for src, dst in bar:
        bar.set_postfix_str(src.name)
        written.append(restore_image_file(restorer, src, dst, overwrite=overwrite))
        if on_done is not None:
            on_done(src, dst)
    return written


def restore_image_file(restorer: Restorer, src: Path, dst: Path, *, overwrite: bool) -> Path:
    """One image file restored into another, in the restorer's colour order (a BGR
    restorer never converts: a very large photograph costs no extra copy)."""
    order = restorer.color_order
    image = load_image(src, color_order=order)
    restored = restorer(image)
    del image
    return save_image(dst, restored, overwrite=overwrite, color_order=order)
