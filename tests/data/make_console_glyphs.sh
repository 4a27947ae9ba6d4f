#!/bin/sh
# Regenerates console_glyphs.txt: the code points every Linux console font below can show
# (the intersection of their Unicode tables), from Debian's console-setup-linux fonts read
# with kbd's psfgettable. Run as root on Debian (apt-get download needs no install).
set -eu
out=$(cd "$(dirname "$0")" && pwd)/console_glyphs.txt
work=$(mktemp -d)
cd "$work"
apt-get download console-setup-linux kbd >/dev/null 2>&1
for deb in *.deb; do dpkg-deb -x "$deb" root; done
fonts="Lat15-Fixed16 Lat15-Terminus16 Lat15-VGA16 Lat15-VGA8 CyrAsia-Fixed16 CyrAsia-Terminus16 CyrAsia-Terminus12x6 Uni2-Fixed16 Uni2-VGA16"
for f in $fonts; do
    zcat "root/usr/share/consolefonts/$f.psf.gz" > "$f.psf"
    LD_LIBRARY_PATH=root/usr/lib/x86_64-linux-gnu root/usr/bin/psfgettable "$f.psf" "$f.tbl" >/dev/null
    grep -v '^#' "$f.tbl" | grep -o 'U+[0-9a-fA-F]*' | tr 'a-f' 'A-F' | sort -u > "$f.set"
done
set -- $fonts
cp "$1.set" all.set
for f in "$@"; do comm -12 all.set "$f.set" > next.set; mv next.set all.set; done
{
    echo "# Code points every one of these Linux console fonts can show (Debian"
    echo "# console-setup-linux $(dpkg-deb -f console-setup-linux_*.deb Version), read with"
    echo "# psfgettable): $fonts."
    echo "# Made by tests/data/make_console_glyphs.sh; used by tests/test_tui_console.py."
    cat all.set
} > "$out"
rm -rf "$work"
