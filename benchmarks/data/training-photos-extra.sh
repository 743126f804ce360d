#!/usr/bin/env bash
# Collects the proposed ADDITIONAL TRAINING photos (49; 6 more optional) into the folder given
# (default: ./data/photos-extra). Mostly 600..1600 px wide; lower JPEG quality (q~70..96) than
# the test set. Needs apt-get (Debian bookworm archive); ~33 MB download.
set -euo pipefail
out=${1:-data/photos-extra}
mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get download -qq tuxpaint-data palapeli-data kphotoalbum digikam-data sddm-theme-maldives \
  scribus-template >/dev/null
for deb in *.deb; do dpkg-deb -x "$deb" root; done
back="$OLDPWD"; cd "$back"
take() { # take SRC NAME
  [ -f "$1" ] && cp "$1" "$out/$2" || echo "missing: $1" >&2
}
r="$work/root/usr/share"
for f in burnt_bark cliff corn_maze jellyfish lighthouse mossy_bark mossy_log mudstone ocean_splash \
         ocean_waves redwoods_above rocks sheep spiders_web sun_behind_clouds sun_behind_leaves \
         trees_above trees_at_dusk wool_mill_machine; do
  take "$r/tuxpaint/templates/$f.jpg" "tuxpaint-$f.jpg"          # Bill Kendrick, GPL-2+
done
for f in castle-maintenon cincinnati-bridge citrus-fruits european-honey-bee panther-chameleon-female; do
  take "$r/palapeli/collection/$f.jpg" "palapeli-$f.jpg"          # see .desktop: PD / GFDL
done
for f in bar55 bar55_2 blackie cold_water donna donna_2 grand_canyon_1 grand_canyon_2 grand_canyon_3 \
         jesper jesper_2 new_wave_1 new_wave_2 pool pool_2 qt-logo skagen skagen_2 snow spiff \
         spiff_2 sunset wayne; do
  take "$r/kphotoalbum/demo/$f.jpg" "kpa-$f.jpg"                  # 800x5xx snapshots, EXIF-rotated
done
take "$r/digikam/about/images/body-background.jpg" "digikam-body-background.jpg"
take "$r/sddm/themes/maldives/background.jpg" "sddm-maldives.jpg" # Nevit Dilmen, CC-BY-3.0
if [ "${WITH_SCRIBUS:-0}" = 1 ]; then   # optional: 800x600/1024x768, provenance unclear
  for f in br2/brightness br2/halfmoon br2/moon br2/nature br2/sunset cal2/moon; do
    take "$r/scribus/templates/$f.jpg" "scribus-${f/\//-}.jpg"
  done
fi
ls "$out" | wc -l | xargs echo "photos in $out:"
