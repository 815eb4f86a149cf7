#!/bin/sh
# Builds small.img.gz, the base volume of FuzzReadVolume, with independent
# tools only (mkntfs and an ntfs-3g mount from ntfs-3g; setfattr). Needs
# root (FUSE). The output is committed; rerun only to change the corpus.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'fusermount -u "$work/mnt" 2>/dev/null || true; rm -rf "$work"' EXIT
img=$work/small.img
truncate -s 3M "$img"
mkntfs -F -Q -q -L small -c 1024 -s 512 "$img"
mkdir "$work/mnt"
ntfs-3g "$img" "$work/mnt"
mkdir -p "$work/mnt/Windows/System32/config"
printf 'regf-not-really' > "$work/mnt/Windows/System32/config/SYSTEM"
printf 'hello\n' > "$work/mnt/Readme.txt"
printf 'long one\n' > "$work/mnt/A long file name.txt"
setfattr -n system.ntfs_dos_name -v 'ALONGF~1.TXT' "$work/mnt/A long file name.txt"
mkdir "$work/mnt/Many"
i=0
while [ $i -lt 60 ]; do printf '%d' $i > "$work/mnt/Many/entry-$i.dat"; i=$((i+1)); done
head -c 20000 /dev/zero | tr '\0' 'x' > "$work/mnt/Many/big.bin"
printf 'ü' > "$work/mnt/Überprüfung.txt"
fusermount -u "$work/mnt"
gzip -9 -n -c "$img" > "$here/small.img.gz"
ls -l "$here/small.img.gz"
