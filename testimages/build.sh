#!/usr/bin/env bash
# Build wuoffline's test images with independent tools only (sgdisk, sfdisk,
# mkntfs, ntfs-3g + setfattr, mkfs.vfat + mtools, hivex), verify them with
# other independent tools (fls, istat, ntfsinfo, hivexregedit, sgdisk -p),
# and write the compressed results to testimages/data/.
#
#   sudo ./testimages/build.sh            (or: make testimages)
#   STAGE=hives ./testimages/build.sh     only hives/ and the tree tarballs
#
# Needs root (FUSE mounts, a loop device for the 4Kn disk).  The work
# directory testimages/build/ is kept for inspection (git-ignored).
# Output is reproducible: fixed GUIDs, serials and timestamps everywhere
# (mkntfs -T, ntfslabel --new-serial, ntfs-3g under faketime plus
# system.ntfs_times, SOURCE_DATE_EPOCH for mtools, tar --mtime=@0, gzip -n).  See testimages/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
DATA=$HERE/data
WORK=$HERE/_build   # "_" keeps go ./... out of it (a live mount there would break builds)
STAGE=${STAGE:-all}
MINIMAL_HIVE=${MINIMAL_HIVE:-$ROOT/../shared/fixtures/hives/hivex/minimal}
# 2024-09-12 10:15:32 UTC: the time every file on the test volumes carries.
FIXED_TIME=1726136132
FAKE_TIME="2024-09-12 10:15:32"
export SOURCE_DATE_EPOCH=$FIXED_TIME MTOOLS_SKIP_CHECK=1 LC_ALL=C.UTF-8 TZ=UTC

start_time=$(date +%s)
log() { printf '== %s\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
need() { # need TOOL DEBIAN-PACKAGE
	command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt-get install $2)")
}
missing=()
need python3 python3
need sgdisk gdisk
need sfdisk fdisk
need losetup mount
need mkntfs ntfs-3g
need ntfs-3g ntfs-3g
need ntfslabel ntfs-3g
need ntfsinfo ntfs-3g
need setfattr attr
need mkfs.vfat dosfstools
need mmd mtools
need mcopy mtools
need fls sleuthkit
need istat sleuthkit
need icat sleuthkit
need hivexregedit libwin-hivex-perl
need gzip gzip
need tar tar
need fusermount3 fuse3
need faketime faketime
# python3 with the hivex module: the first python3 that has it.
PY=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import hivex' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || missing+=("python3 module hivex (apt-get install python3-hivex)")
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}"
[ -f "$MINIMAL_HIVE" ] || die "no starting hive at $MINIMAL_HIVE (hivex's images/minimal; set MINIMAL_HIVE)"
if [ "$STAGE" = all ] && [ "$(id -u)" -ne 0 ]; then die "needs root (FUSE and loop devices)"; fi

# ---------------------------------------------------------------- cleanup
mounts=()
loops=()
cleanup() {
	local m l
	for m in "${mounts[@]}"; do mountpoint -q "$m" && { umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null || true; }; done
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
}
trap cleanup EXIT

rm -rf "$WORK"
mkdir -p "$WORK" "$DATA" "$DATA/hives"

# ---------------------------------------------------------------- hives and trees
PROFILES=(broken-win11 healthy-win11 broken-win10)
log "hives (hivex)"
"$PY" "$HERE/mkhives.py" "$MINIMAL_HIVE" "$WORK/hives"
for p in "${PROFILES[@]}"; do
	log "tree $p"
	"$PY" "$HERE/mktree.py" "$p" "$WORK/hives/$p" "$WORK/tree/$p" "$WORK/dos-$p.txt"
done

gz() { gzip -9n -c "$1" >"$2.tmp" && mv "$2.tmp" "$2"; }

# hives/: broken-* and healthy-* are the Windows 11 pair, broken-win10-* the MBR image's.
for hv in SYSTEM SOFTWARE COMPONENTS; do
	gz "$WORK/hives/broken-win11/$hv" "$DATA/hives/broken-$hv.gz"
	gz "$WORK/hives/healthy-win11/$hv" "$DATA/hives/healthy-$hv.gz"
	gz "$WORK/hives/broken-win10/$hv" "$DATA/hives/broken-win10-$hv.gz"
done

mktar() { # mktar TREE OUT
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode='u=rwX,go=rX' --format=gnu \
		-C "$1" -cf - . | gzip -9n >"$2.tmp"
	mv "$2.tmp" "$2"
}
log "tree tarballs"
mktar "$WORK/tree/broken-win11" "$DATA/broken-tree.tar.gz"
mktar "$WORK/tree/healthy-win11" "$DATA/healthy-tree.tar.gz"

verify_hives() {
	local p hv
	for p in "${PROFILES[@]}"; do
		for hv in SYSTEM SOFTWARE COMPONENTS DEFAULT SAM SECURITY BCD; do
			hivexregedit --export "$WORK/hives/$p/$hv" '\' >"$WORK/hives/$p/$hv.reg" 2>/dev/null ||
				die "hivexregedit cannot export $p/$hv"
		done
		printf '   %-14s SYSTEM %4d keys, SOFTWARE %3d keys, COMPONENTS %2d keys (hivexregedit --export)\n' "$p" \
			"$(grep -c '^\[' "$WORK/hives/$p/SYSTEM.reg")" "$(grep -c '^\[' "$WORK/hives/$p/SOFTWARE.reg")" \
			"$(grep -c '^\[' "$WORK/hives/$p/COMPONENTS.reg")"
	done
}
log "verify hives"
verify_hives
log "findings.json"
"$PY" "$HERE/findings.py" "$HERE/findings.json"

if [ "$STAGE" = hives ]; then
	log "stage hives done in $(($(date +%s) - start_time)) s"
	exit 0
fi

# ---------------------------------------------------------------- NTFS volumes
# set_times DIR: every file and directory below DIR gets FIXED_TIME as its
# four NTFS times (ntfs-3g's system.ntfs_times: creation, last write, last
# access, MFT change, as little-endian FILETIMEs), deepest first so that no
# later change touches a directory again.
set_times() {
	"$PY" - "$1" "$FIXED_TIME" <<'EOF'
import os, struct, sys
root, t = sys.argv[1], int(sys.argv[2])
ft = (t + 11644473600) * 10_000_000
val = struct.pack("<4Q", ft, ft, ft, ft)
for d, dirs, files in os.walk(root, topdown=False):
    for n in files + dirs:
        os.setxattr(os.path.join(d, n), "system.ntfs_times", val, follow_symlinks=False)
os.setxattr(root, "system.ntfs_times", val)
EOF
}

# copy_sorted SRC DST: copy a tree in sorted name order.  cp -r follows the
# source directory's readdir order, which differs between two fresh copies
# of the same tree on most Linux file systems; ntfs-3g allocates MFT records
# in creation order, so the order must be fixed for reproducible volumes.
copy_sorted() {
	"$PY" - "$1" "$2" <<'EOF'
import os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
for d, dirs, files in os.walk(src):
    dirs.sort()
    rel = os.path.relpath(d, src)
    out = dst if rel == "." else os.path.join(dst, rel)
    for n in sorted(files):
        shutil.copyfile(os.path.join(d, n), os.path.join(out, n))
    for n in dirs:
        os.mkdir(os.path.join(out, n))
EOF
}

# ntfs_mount IMG DIR: mount read-write with ntfs-3g in the foreground
# (no_detach) so that ntfs_umount can wait until it has written everything.
ntfs_pid=
ntfs_mount() {
	mkdir -p "$2"
	# The clock frozen at FIXED_TIME (faketime): every time ntfs-3g writes
	# (standard information, file names in records and index entries, $Volume)
	# is then the same on every build.
	faketime -f "$FAKE_TIME" ntfs-3g -o no_detach,noatime,windows_names "$1" "$2" 2>>"$WORK/ntfs-3g.log" &
	ntfs_pid=$!
	mounts+=("$2")
	local i
	for i in $(seq 100); do mountpoint -q "$2" && return 0; sleep 0.1; done
	die "ntfs-3g did not mount $1"
}
ntfs_umount() {
	sync
	local i
	for i in $(seq 50); do umount "$1" 2>/dev/null && break; sleep 0.2; done
	mountpoint -q "$1" && die "cannot unmount $1: $(fuser -vm "$1" 2>&1 | tail -n +2)"
	wait "$ntfs_pid" || die "ntfs-3g exited with an error for $1"
	ntfs_pid=
}

# mkvol OUT SIZE_MIB SECTOR START_SECTOR LABEL SERIAL [TREE DOSLIST]
mkvol() {
	local out=$1 mib=$2 ss=$3 start=$4 label=$5 serial=$6 tree=${7:-} dos=${8:-}
	rm -f "$out"
	truncate -s "${mib}M" "$out"
	mkntfs -q -F -Q -T -s "$ss" -c 4096 -p "$start" -H 255 -S 63 -L "$label" "$out" >/dev/null
	ntfslabel --new-serial="$serial" "$out" >/dev/null 2>&1
	local mnt=$WORK/mnt
	ntfs_mount "$out" "$mnt"
	if [ -n "$tree" ]; then
		copy_sorted "$tree" "$mnt"
		if [ -n "$dos" ]; then
			local rel short
			while IFS=$'\t' read -r rel short; do
				setfattr -h -n system.ntfs_dos_name -v "$short" "$mnt/$rel" ||
					die "setting DOS name $short on $rel"
			done <"$dos"
		fi
	fi
	set_times "$mnt"
	ntfs_umount "$mnt"
	# Windows leaves clean restart pages in $LogFile; ntfs-3g leaves it all
	# 0xFF.  LOGFILE=empty keeps the latter (broken-mbr's Windows volume).
	[ "${LOGFILE:-clean}" = empty ] || "$PY" "$HERE/ntfspatch.py" logfile-clean "$out" >/dev/null
}

# ---------------------------------------------------------------- partitioned disks
# Fixed identities (GUIDs, disk signatures, volume serials), so that
# rebuilding does not churn the repository.
GUID_DISK_GPT=5B4E1F0A-7C3D-4E2B-9A81-0D6C2F4B3A01
GUID_DISK_HEALTHY=5B4E1F0A-7C3D-4E2B-9A81-0D6C2F4B3A02
GUID_DISK_4KN=5B4E1F0A-7C3D-4E2B-9A81-0D6C2F4B3A03
part_guid() { printf '8E1D3C5A-2F4B-4A6C-9D0E-%04X%08X' "$1" "$2"; }

mkesp() { # mkesp OUT SIZE_MIB SECTOR BCD
	rm -f "$1"
	truncate -s "${2}M" "$1"
	if [ "$3" = 512 ]; then
		mkfs.vfat -F 32 -s 1 -S 512 -i 1A2B3C4D -n SYSTEM --invariant "$1" >/dev/null
	else
		# FAT32 with 4096-byte sectors needs 256 MiB; a small 4Kn ESP is FAT16.
		mkfs.vfat -F 16 -s 1 -S 4096 -i 1A2B3C4E -n SYSTEM --invariant "$1" >/dev/null
	fi
	local f=$WORK/esp-files
	rm -rf "$f"; mkdir -p "$f"
	cp "$4" "$f/BCD"
	: >"$f/bootmgfw.efi"; : >"$f/bootx64.efi"
	touch -d "@$FIXED_TIME" "$f"/*
	mmd -i "$1" ::/EFI ::/EFI/Boot ::/EFI/Microsoft ::/EFI/Microsoft/Boot ::/EFI/Microsoft/Recovery
	mcopy -m -i "$1" "$f/bootx64.efi" ::/EFI/Boot/bootx64.efi
	mcopy -m -i "$1" "$f/bootmgfw.efi" ::/EFI/Microsoft/Boot/bootmgfw.efi
	mcopy -m -i "$1" "$f/BCD" ::/EFI/Microsoft/Boot/BCD
}

place() { # place DISK VOLUME START_SECTOR SECTOR_SIZE
	dd if="$2" of="$1" bs="$4" seek="$3" conv=notrunc,sparse status=none
}

# gpt_disk OUT SECTOR DISKGUID PROFILE TAG WITH_RECOVERY
# Layout (MiB): 1 gap, EFI, MSR 16 (unformatted), Windows 96, [Recovery 16], 1 gap.
gpt_disk() {
	local out=$1 ss=$2 dguid=$3 prof=$4 tag=$5 rec=$6
	local spm=$((1048576 / ss)) # sectors per MiB
	local esp_mib=36; [ "$ss" = 4096 ] && esp_mib=32
	local s1=$spm s2 s3 s4 total
	s2=$((s1 + esp_mib * spm)); s3=$((s2 + 16 * spm)); s4=$((s3 + 96 * spm))
	total=$((s4 + (rec ? 16 : 0) * spm + spm))
	rm -f "$out"; truncate -s $((total * ss)) "$out"
	local dev=$out
	if [ "$ss" = 4096 ]; then
		dev=$(losetup --sector-size 4096 -f --show "$out"); loops+=("$dev")
	fi
	local args=(-o -U "$dguid"
		-n 1:"$s1":+"${esp_mib}M" -t 1:EF00 -c 1:"EFI system partition" -u 1:"$(part_guid "$tag" 1)"
		-n 2:"$s2":+16M -t 2:0C01 -c 2:"Microsoft reserved partition" -u 2:"$(part_guid "$tag" 2)"
		-n 3:"$s3":+96M -t 3:0700 -c 3:"Basic data partition" -u 3:"$(part_guid "$tag" 3)")
	if [ "$rec" = 1 ]; then
		args+=(-n 4:"$s4":+16M -t 4:2700 -c 4:"Basic data partition" -u 4:"$(part_guid "$tag" 4)"
			-A 4:set:0 -A 4:set:63)
	fi
	sgdisk "${args[@]}" "$dev" >/dev/null
	if [ "$ss" = 4096 ]; then losetup -d "$dev"; loops=("${loops[@]/$dev/}"); fi

	mkesp "$WORK/$tag-esp.img" "$esp_mib" "$ss" "$WORK/hives/$prof/BCD"
	place "$out" "$WORK/$tag-esp.img" "$s1" "$ss"
	mkvol "$WORK/$tag-windows.img" 96 "$ss" "$s3" Windows "$(serial "$tag" 3)" "$WORK/tree/$prof" "$WORK/dos-$prof.txt"
	place "$out" "$WORK/$tag-windows.img" "$s3" "$ss"
	if [ "$rec" = 1 ]; then
		local rt=$WORK/tree/recovery
		rm -rf "$rt"; mkdir -p "$rt/Recovery/WindowsRE"
		printf '<?xml version="1.0" encoding="utf-8"?>\r\n<WindowsRE version="2.0">\r\n<WinreBCD id="{%s}"/>\r\n<WinreLocation path="\\Recovery\\WindowsRE" id="0" offset="%d" guid="{%s}"/>\r\n</WindowsRE>\r\n' \
			"$(part_guid "$tag" 9)" $((s4 * ss)) "$dguid" >"$rt/Recovery/WindowsRE/ReAgent.xml"
		mkvol "$WORK/$tag-recovery.img" 16 "$ss" "$s4" "" "$(serial "$tag" 4)" "$rt"
		place "$out" "$WORK/$tag-recovery.img" "$s4" "$ss"
	fi
}

serial() { printf '%08X%08X' $((0x1E2D3C4B + $1)) $((0x5A690000 + $2)); }
tagnum() { case $1 in broken-gpt) echo 1 ;; healthy-gpt) echo 2 ;; broken-4kn) echo 3 ;; broken-mbr) echo 4 ;; esac; }

log "broken-gpt.img"
gpt_disk "$WORK/broken-gpt.img" 512 "$GUID_DISK_GPT" broken-win11 1 1
mv "$WORK/1-windows.img" "$WORK/broken-volume.img"
log "healthy-gpt.img"
gpt_disk "$WORK/healthy-gpt.img" 512 "$GUID_DISK_HEALTHY" healthy-win11 2 1
log "broken-4kn.img"
gpt_disk "$WORK/broken-4kn.img" 4096 "$GUID_DISK_4KN" broken-win11 3 0

log "broken-mbr.img"
# MBR: System Reserved (NTFS 0x07, active, with \Boot\BCD) + Windows (NTFS 0x07).
mbr=$WORK/broken-mbr.img
rm -f "$mbr"; truncate -s $(((2048 + 32768 + 196608 + 2048) * 512)) "$mbr"
sfdisk --quiet "$mbr" <<'EOF'
label: dos
label-id: 0x5ee1a9d3
unit: sectors

start=2048, size=32768, type=7, bootable
start=34816, size=196608, type=7
EOF
sr=$WORK/tree/sysreserved
rm -rf "$sr"; mkdir -p "$sr/Boot"
cp "$WORK/hives/broken-win10/BCD" "$sr/Boot/BCD"
: >"$sr/bootmgr"; : >"$sr/BOOTNXT"
mkvol "$WORK/4-sysres.img" 16 512 2048 "System Reserved" "$(serial 4 1)" "$sr"
place "$mbr" "$WORK/4-sysres.img" 2048 512
LOGFILE=empty mkvol "$WORK/4-windows.img" 96 512 34816 "" "$(serial 4 2)" "$WORK/tree/broken-win10" "$WORK/dos-broken-win10.txt"
place "$mbr" "$WORK/4-windows.img" 34816 512

# ---------------------------------------------------------------- refusal variants (bare volumes)
vol=$WORK/broken-volume.img

log "refuse-hibernated.img"
cp --sparse=always "$vol" "$WORK/refuse-hibernated.img"
ntfs_mount "$WORK/refuse-hibernated.img" "$WORK/mnt"
{ printf 'hibr'; head -c $((65536 - 4)) /dev/zero; } >"$WORK/mnt/hiberfil.sys"
set_times "$WORK/mnt"
ntfs_umount "$WORK/mnt"
"$PY" "$HERE/ntfspatch.py" logfile-clean "$WORK/refuse-hibernated.img" >/dev/null

log "refuse-dirty.img"
cp --sparse=always "$vol" "$WORK/refuse-dirty.img"
"$PY" "$HERE/ntfspatch.py" dirty "$WORK/refuse-dirty.img"

log "refuse-bitlocker.img"
cp --sparse=always "$vol" "$WORK/refuse-bitlocker.img"
printf -- '-FVE-FS-' | dd of="$WORK/refuse-bitlocker.img" bs=1 seek=3 conv=notrunc status=none

log "refuse-faststartup.img"
cp --sparse=always "$vol" "$WORK/refuse-faststartup.img"
"$PY" "$HERE/ntfspatch.py" logfile-v2 "$WORK/refuse-faststartup.img"

# ---------------------------------------------------------------- verification
log "verify images"
"$HERE/verify.sh" "$WORK"

# ---------------------------------------------------------------- compress
IMAGES=(broken-gpt healthy-gpt broken-mbr broken-4kn broken-volume refuse-hibernated refuse-dirty refuse-bitlocker refuse-faststartup)
log "compress"
for i in "${IMAGES[@]}"; do
	gz "$WORK/$i.img" "$DATA/$i.img.gz"
done

printf '\n%-26s %10s %10s\n' image raw compressed
for i in "${IMAGES[@]}"; do
	printf '%-26s %9dM %9dK\n' "$i.img" $(($(stat -c %s "$WORK/$i.img") / 1048576)) $(($(stat -c %s "$DATA/$i.img.gz") / 1024))
done
for f in broken-tree.tar.gz healthy-tree.tar.gz; do
	printf '%-26s %10s %9dK\n' "$f" - $(($(stat -c %s "$DATA/$f") / 1024))
done
du -ch "$DATA" | tail -1
log "done in $(($(date +%s) - start_time)) s"
