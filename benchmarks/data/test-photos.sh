#!/usr/bin/env bash
# Collects the proposed TEST set (25 photos) into the folder given (default: ./data/test-photos):
# 14 Enlightenment 0.25 wallpapers (3840x2059..3840x2160, JPEG q~99) + 11 LXQt wallpapers
# (1920x1277..3000x1994). Disjoint by package and named photographer from the training packages.
# Needs apt-get (Debian bookworm archive); ~407 MB download (enlightenment-data is 382 MiB).
set -euo pipefail
out=${1:-data/test-photos}
mkdir -p "$out"; out=$(cd "$out" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download -qq enlightenment-data lxqt-themes >/dev/null
for deb in *.deb; do dpkg-deb -x "$deb" root; done
take() { # take SRC NAME
  [ -f "$1" ] && cp "$1" "$out/$2" || echo "missing: $1" >&2
}
# Enlightenment backgrounds are Eet (.edj) containers holding plain JPEG entries
# "edje/images/N" (a resolution pyramid); write out the largest one.
e="$work/root/usr/share/enlightenment/data/backgrounds"
python3 - "$e" "$out" <<'PY'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
names = ("Bamboo Foggy-Trees God-Rays Green-Maple Lichen-Branches Mountain Peaks Red-Maple "
         "Sea-of-Lanterns Snow-Trees Spruce-Needles Sunset-Clouds White-Flower Yellow-Flower").split()
for n in names:
    try: d = open(f"{src}/{n}.edj", "rb").read()
    except OSError: print(f"missing: {n}.edj", file=sys.stderr); continue
    magic, nd, _ = struct.unpack(">III", d[:12])
    assert magic in (0x1ee7ff00, 0x1ee70f42), n
    best = b""
    for i in range(nd):
        o, s, ds, no, ns, fl = struct.unpack(">6I", d[12 + 24*i: 36 + 24*i])
        name = d[no:no+ns].rstrip(b"\0")
        if name.startswith(b"edje/images/") and d[o:o+3] == b"\xff\xd8\xff" and s > len(best):
            best = d[o:o+s]
    if best: open(f"{out}/e25-{n}.jpg", "wb").write(best)
    else: print(f"no jpeg in {n}.edj", file=sys.stderr)
PY
l="$work/root/usr/share/lxqt/wallpapers"
for f in Butterfly-Kenneth-Wimer.jpg Valendas.png after-the-rain.jpg appleflower.png beam.png \
         butterfly.png cloud.png drop.png flowers.png fog.jpg this-is-not-windows.jpg; do
  take "$l/$f" "lxqt-$f"   # note: Valendas.png is RGBA (opaque); drop alpha when loading
done
ls "$out" | wc -l | xargs echo "photos in $out:"
