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
#   install  a GPT disk (sgdisk) whose one partition is an aged volume
#          holding the whole broken Windows installation of the committed
#          test images (data/broken-tree.tar.gz: the catalogue's findings,
#          its DOS names), its SOFTWARE hive grown by $HIVE_MB MiB of keys
#          and fragmented into an $ATTRIBUTE_LIST, WinSxS grown by
#          $WINSXS_ENTRIES entries past pending.xml into extension records
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
# The tests (ntfs/aged_test.go; offline/fix_aged_test.go for install) run
# this script into a temporary directory when the tools are present (always
# in CI): about 5 s for aged, 45 s for 4kn, 60 s for big, 15 s for install;
# nothing it writes is committed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build-aged.sh OUTDIR [aged|4kn|big]...}
shift
KINDS=("$@")
[ ${#KINDS[@]} -gt 0 ] || KINDS=(aged 4kn big install)
HIVE_MB=${HIVE_MB:-1}
WINSXS_ENTRIES=${WINSXS_ENTRIES:-3000}
BIG_ENTRIES=${BIG_ENTRIES:-50000}
MINIMAL_HIVE=${MINIMAL_HIVE:-$HERE/../../shared/fixtures/hives/hivex/minimal}
export LC_ALL=C.UTF-8 TZ=UTC

log() { printf '== build-aged: %s\n' "$*" >&2; }
die() { printf 'build-aged.sh: %s\n' "$*" >&2; exit 1; }

missing=()
for t in mkntfs ntfs-3g fusermount3 istat ifind sgdisk tar; do command -v $t >/dev/null 2>&1 || missing+=("$t"); done
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

# The installation: the broken test images' tree, its SOFTWARE hive grown
# with mkbighive.py's keys (new root keys Vendor00.., ManySubkeys, which no
# check reads) so that, cut into one-cluster runs, it outgrows its record.
TREE=
CONFIG=Windows/System32/config
prepare_install() {
	TREE=$WORK/tree
	mkdir -p "$TREE"
	tar -xzf "$HERE/data/broken-tree.tar.gz" -C "$TREE"
	"$PY" "$HERE/mkbighive.py" "$TREE/$CONFIG/SOFTWARE" "$WORK/SOFTWARE-install" "$HIVE_MB" >/dev/null
}


build() { # build KIND
	local kind=$1 img=$OUT/$1.img size args entries=$WINSXS_ENTRIES
	case $kind in
	aged) size=64 args=(-s 512 -c 4096) ;;
	# 4 KiB records hold four times the runs: more entries to overflow them
	# (and to use up the MFT zone, which ntfs-3g's filler leaves free).
	4kn) size=256 args=(-s 4096 -c 4096) entries=$((WINSXS_ENTRIES * 10 / 3)) ;;
	big) size=256 args=(-s 512 -c 4096) ;;
	# The volume starts at 1 MiB on the disk (mkntfs -p: hidden sectors).
	install) size=96 args=(-s 512 -c 4096 -p 2048 -H 255 -S 63) ;;
	*) die "unknown kind $kind" ;;
	esac
	local hive=$WORK/SOFTWARE vol=$img
	if [ "$kind" = install ]; then
		[ -n "$TREE" ] || prepare_install
		hive=$WORK/SOFTWARE-install vol=$WORK/install-volume.img
	fi
	log "$kind: mkntfs ${args[*]} (${size} MiB)"
	rm -f "$img" "$vol"
	truncate -s ${size}M "$vol"
	mkntfs -F -Q -q -T -L aged "${args[@]}" "$vol"
	mount_img "$vol"
	TREE=$TREE WINSXS_ENTRIES=$entries BIG_ENTRIES=$BIG_ENTRIES "$PY" "$HERE/age.py" "$mnt" "$kind" "$hive"
	umount_img
	if [ "$kind" = install ]; then
		# GPT: 1 MiB gap, the Windows partition (basic data), 1 MiB gap.
		truncate -s $(((size + 2) * 1048576)) "$img"
		sgdisk -o -U 5B4E1F0A-7C3D-4E2B-9A81-0D6C2F4B3A0A \
			-n 1:2048:+${size}M -t 1:0700 -c 1:"Basic data partition" \
			-u 1:8E1D3C5A-2F4B-4A6C-9D0E-000A00000001 "$img" >/dev/null
		dd if="$vol" of="$img" bs=512 seek=2048 conv=notrunc,sparse status=none
		rm -f "$vol"
		vol=$img
	fi
	# Record the layout: the hive's and WinSxS's records.
	local off=0
	[ "$kind" = install ] && off=2048
	{
		for p in Windows/System32/config/SOFTWARE Windows/WinSxS; do
			ino=$(ifind -o "$off" -n "$p" "$img" 2>/dev/null || true)
			echo "## $p: MFT record $ino"
			[ -n "$ino" ] && istat -o "$off" "$img" "$ino" | sed -n '/^Attributes:/,$p' | grep -v '^[0-9 ]*$' | head -40
		done
	} >"$OUT/$kind.txt" 2>&1 || true
}

for k in "${KINDS[@]}"; do build "$k"; done
log "done: ${KINDS[*]} in $OUT"
