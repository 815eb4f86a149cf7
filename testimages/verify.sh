#!/usr/bin/env bash
# Check the built images with independent tools: sgdisk -p / sfdisk -d for the
# partition tables, fls -r / istat / icat (The Sleuth Kit) and ntfsinfo
# (ntfs-3g) for the NTFS volumes, hivexregedit for the hives read back out of
# each volume, and ntfs-3g itself for the refusal variants (it refuses a
# read-write mount of a hibernated or Fast Startup volume too).
#
#   testimages/verify.sh WORKDIR      (build.sh calls it; WORKDIR holds *.img and hives/)
set -euo pipefail
W=$1
HERE=$(cd "$(dirname "$0")" && pwd)
fail() { printf 'verify: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf '   ok  %s\n' "$*" >&2; }

# inode IMG SECTOR OFFSET PATH: the inode address fls gives a path.
inode() {
	fls -r -p -b "$2" -o "$3" "$1" | awk -v p="$4" -F'\t' '{ split($1, a, " "); sub(/:$/, "", a[2]); if ($2 == p && !done) { print a[2]; done = 1 } }'
}

# check_windows IMG SECTOR OFFSET PROFILE WHAT: the Windows volume at OFFSET.
check_windows() {
	local img=$1 ss=$2 off=$3 prof=$4 what=$5
	local list=$W/fls-$what.txt
	fls -r -p -b "$ss" -o "$off" "$img" >"$list" || fail "$what: fls -r failed"
	local n
	n=$(wc -l <"$list")
	[ "$n" -gt 3500 ] || fail "$what: fls lists only $n entries"
	local must=(Windows/SoftwareDistribution Windows/System32/catroot2 Windows/System32/config/SYSTEM
		Windows/System32/config/SOFTWARE Windows/System32/config/COMPONENTS Windows/System32/drivers/etc/hosts
		ProgramData/Microsoft/Network/Downloader/qmgr.db "Users/Ünïcødé" "Users/Пользователь")
	[ "${prof#broken}" != "$prof" ] && must+=(Windows/WinSxS/pending.xml Windows/System32/LogFiles/Srt/SrtTrail.txt)
	local p
	for p in "${must[@]}"; do
		grep -q -P "\t\Q$p\E\$" "$list" || fail "$what: fls does not list $p"
	done
	local sxs
	sxs=$(grep -c -P '\tWindows/WinSxS/[^/]+$' "$list")
	[ "$sxs" -ge 3000 ] || fail "$what: WinSxS has only $sxs entries"
	# DOS names: istat shows both $FILE_NAME attributes.
	local ino
	ino=$(inode "$img" "$ss" "$off" Windows/SoftwareDistribution)
	istat -b "$ss" -o "$off" "$img" "$ino" | grep -c 'SOFTWA~1' >/dev/null || fail "$what: SoftwareDistribution has no DOS name SOFTWA~1"
	# Hives read back out of the volume are byte-identical to the ones built.
	local hv
	for hv in SYSTEM SOFTWARE COMPONENTS; do
		ino=$(inode "$img" "$ss" "$off" "Windows/System32/config/$hv")
		icat -b "$ss" -o "$off" "$img" "$ino" >"$W/readback-$hv"
		cmp -s "$W/readback-$hv" "$W/hives/$prof/$hv" || fail "$what: $hv read back by icat differs"
		hivexregedit --export "$W/readback-$hv" '\' >/dev/null 2>&1 || fail "$what: hivexregedit cannot read $hv"
	done
	ok "$what: fls -r $n entries, WinSxS $sxs, SOFTWA~1 (istat), hives identical via icat + hivexregedit"
}

# ntfs_state VOLUME_FILE: ntfsinfo's view of the volume flags.
ntfs_flags() { ntfsinfo -m -f "$1" 2>/dev/null | awk -F: '/Volume Flags/ { gsub(/[ \t]/, "", $2); print $2; exit }'; }

# GPT disks.
for d in broken-gpt healthy-gpt; do
	sgdisk -p "$W/$d.img" >"$W/sgdisk-$d.txt" || fail "$d: sgdisk -p"
	grep -q 'Sector size (logical): 512 bytes' "$W/sgdisk-$d.txt" || fail "$d: not 512-byte sectors"
	[ "$(grep -cE '^ +[0-9]+ ' "$W/sgdisk-$d.txt")" = 4 ] || fail "$d: expected 4 partitions"
	start=$(awk '$1 == 3 { print $2 }' "$W/sgdisk-$d.txt")
	prof=broken-win11; [ $d = healthy-gpt ] && prof=healthy-win11
	check_windows "$W/$d.img" 512 "$start" "$prof" "$d"
	fls -r -p -o "$(awk '$1 == 4 { print $2 }' "$W/sgdisk-$d.txt")" "$W/$d.img" | grep -c 'Recovery/WindowsRE/ReAgent.xml' >/dev/null ||
		fail "$d: recovery partition has no Recovery/WindowsRE/ReAgent.xml"
	ok "$d: sgdisk -p: 4 partitions, 512-byte sectors, Windows at sector $start"
done

# 4Kn disk: sgdisk needs a loop device with 4096-byte logical sectors.
loop=$(losetup --sector-size 4096 -r -f --show "$W/broken-4kn.img")
trap 'losetup -d "$loop" 2>/dev/null || true' EXIT
sgdisk -p "$loop" >"$W/sgdisk-broken-4kn.txt" || fail "broken-4kn: sgdisk -p"
losetup -d "$loop"; trap - EXIT
grep -q -E 'Sector size \(logical[^)]*\): 4096' "$W/sgdisk-broken-4kn.txt" || fail "broken-4kn: not 4096-byte sectors"
start=$(awk '$1 == 3 { print $2 }' "$W/sgdisk-broken-4kn.txt")
check_windows "$W/broken-4kn.img" 4096 "$start" broken-win11 broken-4kn
ok "broken-4kn: sgdisk -p: 3 partitions, 4096-byte sectors, Windows at sector $start"

# MBR disk.
sfdisk -d "$W/broken-mbr.img" >"$W/sfdisk-broken-mbr.txt"
grep -q 'start=        2048, size=       32768, type=7, bootable' "$W/sfdisk-broken-mbr.txt" || fail "broken-mbr: System Reserved entry"
grep -q 'start=       34816, size=      196608, type=7$' "$W/sfdisk-broken-mbr.txt" || fail "broken-mbr: Windows entry"
fls -r -p -o 2048 "$W/broken-mbr.img" | grep -c -P '\tBoot/BCD$' >/dev/null || fail "broken-mbr: System Reserved has no Boot/BCD"
check_windows "$W/broken-mbr.img" 512 34816 broken-win10 broken-mbr
ok "broken-mbr: sfdisk -d: System Reserved (active) + Windows, both 0x07"

# Bare volume and its refusal variants.
check_windows "$W/broken-volume.img" 512 0 broken-win11 broken-volume
for v in broken-volume refuse-hibernated refuse-faststartup refuse-dirty; do
	ntfsinfo -m -f "$W/$v.img" >"$W/ntfsinfo-$v.txt" 2>&1 || fail "$v: ntfsinfo -m"
done
flags=$(ntfs_flags "$W/broken-volume.img")
[ "$flags" = 0x0000 ] || [ "$flags" = 0 ] || fail "broken-volume: volume flags $flags, want 0"
flags=$(ntfs_flags "$W/refuse-dirty.img")
case $flags in 0x0001*) ;; *) fail "refuse-dirty: ntfsinfo volume flags $flags, want 0x0001"; ;; esac
ok "refuse-dirty: ntfsinfo -m: Volume Flags $flags (broken-volume: 0)"

# ntfs-3g accepts a read-write mount of the clean volume without complaint
# (so its $LogFile restart pages parse as clean 1.1), and refuses one of the
# hibernated and Fast Startup variants (it falls back to read-only).
try_rw() { # try_rw IMG -> ntfs-3g's messages (on a copy: a rw mount may write)
	local m=$W/mnt-try out
	mkdir -p "$m"
	cp --sparse=always "$1" "$W/try.img"
	out=$(ntfs-3g -o rw "$W/try.img" "$m" 2>&1) || true
	mountpoint -q "$m" && umount "$m"
	rm -f "$W/try.img"
	printf '%s' "$out" | tr '\n' ' '
}
msg=$(try_rw "$W/broken-volume.img")
[ -z "$msg" ] || fail "broken-volume: ntfs-3g rw mount complained: $msg"
ok "broken-volume: ntfs-3g mounts it rw without a word (clean \$LogFile 1.1, not dirty)"
msg=$(try_rw "$W/refuse-hibernated.img")
grep -qi 'hibernat' <<<"$msg" || fail "refuse-hibernated: ntfs-3g said: $msg"
ok "refuse-hibernated: ntfs-3g: ${msg:0:90}"
msg=$(try_rw "$W/refuse-faststartup.img")
grep -qi 'unsafe state\|refused to mount' <<<"$msg" || fail "refuse-faststartup: ntfs-3g said: $msg"
ok "refuse-faststartup: ntfs-3g: ${msg:0:90}"
ino=$(inode "$W/refuse-hibernated.img" 512 0 hiberfil.sys)
[ "$(icat "$W/refuse-hibernated.img" "$ino" | head -c 4)" = hibr ] || fail "refuse-hibernated: hiberfil.sys does not start with hibr"
[ "$(dd if="$W/refuse-bitlocker.img" bs=1 skip=3 count=8 status=none)" = -FVE-FS- ] || fail "refuse-bitlocker: no -FVE-FS- at 3"
ok "refuse-bitlocker: -FVE-FS- at byte 3"
