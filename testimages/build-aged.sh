#!/usr/bin/env bash
# Build NTFS volumes shaped like an aged Windows system volume, with
# independent tools only (mkntfs, ntfs-3g, python3-hivex), for the NTFS
# writer's tests on attribute lists, fragmented hives and growing indexes.
#
#   sudo ./testimages/build-aged.sh OUTDIR [KIND...]
#
# KIND is one of (default: all of them)
#   aged   512-byte sectors, 4 KiB clusters, 1 KiB MFT records
#   4kn    4096-byte sectors (mkntfs -s 4096): 4 KiB MFT records
#   big    a directory of $BIG_ENTRIES (default 50000) entries
# and writes OUTDIR/KIND.img (sparse) plus OUTDIR/KIND.txt, the layout
# (istat of the interesting records) for a reader.
#
# How the volumes age (age.py): ntfs-3g allocates next-fit, so a file
# written on a fresh volume is contiguous. One-cluster pad files, a filler
# taking every other free cluster, and every other pad deleted leave only
# one-cluster holes for what is written next. This way:
#   - Windows/System32/config/SOFTWARE (a hivex-made hive of $HIVE_MB MiB)
#     gets one run per cluster: on the aged volume its $DATA outgrows the
#     base record and gets an $ATTRIBUTE_LIST and extension records (ntfs-3g
#     also moves its $FILE_NAME into one);
#   - Windows/WinSxS gets $WINSXS_ENTRIES component directories and
#     manifests (ten thirds as many on the 4Kn volume), whose INDX blocks
#     land in holes: on the aged volume the $INDEX_ALLOCATION spreads over
#     extension records (an $ATTRIBUTE_LIST); on the 4Kn volume it fits one
#     4 KiB record but the index $BITMAP is non-resident;
#   - 40 short-named servicing logs (cbsNN.log) sit beside pending.xml;
#   - Windows/WinSxS/pending.xml exists, and every System32 DLL is a hard
#     link to a file in a WinSxS component directory.
# The tests (ntfs/aged_test.go) run this script into a temporary directory
# when the tools are present (always in CI): about 5 s for aged, 45 s for
# 4kn, 60 s for big; nothing it writes is committed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build-aged.sh OUTDIR [aged|4kn|big]...}
shift
KINDS=("$@")
[ ${#KINDS[@]} -gt 0 ] || KINDS=(aged 4kn big)
HIVE_MB=${HIVE_MB:-1}
WINSXS_ENTRIES=${WINSXS_ENTRIES:-3000}
BIG_ENTRIES=${BIG_ENTRIES:-50000}
MINIMAL_HIVE=${MINIMAL_HIVE:-$HERE/../../shared/fixtures/hives/hivex/minimal}
export LC_ALL=C.UTF-8 TZ=UTC

log() { printf '== build-aged: %s\n' "$*" >&2; }
die() { printf 'build-aged.sh: %s\n' "$*" >&2; exit 1; }

missing=()
for t in mkntfs ntfs-3g fusermount3 istat; do command -v $t >/dev/null 2>&1 || missing+=("$t"); done
PY=
for p in /usr/bin/python3 python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import hivex' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || missing+=("python3 module hivex")
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}"
[ -f "$MINIMAL_HIVE" ] || die "no starting hive at $MINIMAL_HIVE (hivex's images/minimal; set MINIMAL_HIVE)"
[ "$(id -u)" -eq 0 ] || die "needs root (FUSE)"

mkdir -p "$OUT"
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
mnt=
cleanup() {
	if [ -n "$mnt" ] && mountpoint -q "$mnt"; then fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
	rm -rf "$WORK"
}
trap cleanup EXIT

# mount IMG: ntfs-3g in the foreground (no_detach) so that unmounting can
# wait for it to finish writing the image.
mount_img() {
	mnt=$WORK/mnt
	mkdir -p "$mnt"
	ntfs-3g -o no_detach,noatime,windows_names "$1" "$mnt" 2>>"$WORK/ntfs-3g.log" &
	ntfs_pid=$!
	for _ in $(seq 1 500); do mountpoint -q "$mnt" && return 0; sleep 0.02; done
	die "ntfs-3g did not mount $1: $(cat "$WORK/ntfs-3g.log")"
}
umount_img() {
	fusermount3 -u "$mnt"
	wait "$ntfs_pid" || die "ntfs-3g exited with an error: $(cat "$WORK/ntfs-3g.log")"
	mnt=
}

log "hive (hivex, $HIVE_MB MiB)"
"$PY" "$HERE/mkbighive.py" "$MINIMAL_HIVE" "$WORK/SOFTWARE" "$HIVE_MB" >/dev/null


build() { # build KIND
	local kind=$1 img=$OUT/$1.img size args entries=$WINSXS_ENTRIES
	case $kind in
	aged) size=64 args=(-s 512 -c 4096) ;;
	# 4 KiB records hold four times the runs: more entries to overflow them
	# (and to use up the MFT zone, which ntfs-3g's filler leaves free).
	4kn) size=256 args=(-s 4096 -c 4096) entries=$((WINSXS_ENTRIES * 10 / 3)) ;;
	big) size=256 args=(-s 512 -c 4096) ;;
	*) die "unknown kind $kind" ;;
	esac
	log "$kind: mkntfs ${args[*]} (${size} MiB)"
	rm -f "$img"
	truncate -s ${size}M "$img"
	mkntfs -F -Q -q -T -L aged "${args[@]}" "$img"
	mount_img "$img"
	WINSXS_ENTRIES=$entries BIG_ENTRIES=$BIG_ENTRIES "$PY" "$HERE/age.py" "$mnt" "$kind" "$WORK/SOFTWARE"
	umount_img
	# Record the layout: the hive's and WinSxS's records.
	{
		for p in Windows/System32/config/SOFTWARE Windows/WinSxS; do
			ino=$(ifind -n "$p" "$img" 2>/dev/null || true)
			echo "## $p: MFT record $ino"
			[ -n "$ino" ] && istat "$img" "$ino" | sed -n '/^Attributes:/,$p' | grep -v '^[0-9 ]*$' | head -40
		done
	} >"$OUT/$kind.txt" 2>&1 || true
}

for k in "${KINDS[@]}"; do build "$k"; done
log "done: ${KINDS[*]} in $OUT"
