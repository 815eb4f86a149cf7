#!/usr/bin/env bash
# make demo: the built-in example, end to end, in a temporary directory.
#
#   scripts/demo.sh BIN        (BIN: the wuoffline binary, e.g. bin/wuoffline)
#
# Decompresses the committed test images (testimages/data/*.gz, nothing but
# gzip needed), diagnoses a broken and a healthy Windows disk, and shows the
# exit codes.  The temporary directory is removed on exit.
set -uo pipefail

BIN=${1:?usage: scripts/demo.sh path/to/wuoffline}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$ROOT/testimages/data
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
[ -x "$BIN" ] || { echo "demo: $BIN is not an executable (run make native)" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wuoffline-demo.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

hr() { printf '\n==== %s\n' "$*"; }

# What an exit code of diagnose means (repair-catalog.md: 0 nothing wrong,
# 1 a check found a problem, 3 fix would be refused for safety).
meaning() {
	case $1 in
	0) echo "0 = no problem found" ;;
	1) echo "1 = problems found: 'wuoffline fix' would repair them" ;;
	2) echo "2 = usage or input error (or a command that is not there yet)" ;;
	3) echo "3 = fix would be refused for safety (BitLocker, hibernation, dirty volume, ...)" ;;
	*) echo "$1 = unexpected (crash or not implemented yet)" ;;
	esac
}

for img in broken-gpt healthy-gpt; do
	[ -f "$DATA/$img.img.gz" ] || { echo "demo: $DATA/$img.img.gz missing (make testimages)" >&2; exit 2; }
	gzip -dc "$DATA/$img.img.gz" >"$TMP/$img.img"
done
printf 'demo: images in %s\n' "$TMP"
ls -l "$TMP"

declare -A code
for img in broken-gpt healthy-gpt; do
	hr "wuoffline diagnose $img.img"
	"$BIN" diagnose "$TMP/$img.img"
	code[$img]=$?
	printf -- '-> exit code %s\n' "$(meaning "${code[$img]}")"
done

hr "wuoffline diagnose --json broken-gpt.img (first 40 lines)"
"$BIN" diagnose --json "$TMP/broken-gpt.img" >"$TMP/broken.json" 2>"$TMP/broken.err"
jcode=$?
head -n 40 "$TMP/broken.json"
[ "$(wc -l <"$TMP/broken.json")" -gt 40 ] && echo "... ($(wc -l <"$TMP/broken.json") lines)"
[ -s "$TMP/broken.err" ] && { echo "(stderr:)"; head -n 10 "$TMP/broken.err"; }
printf -- '-> exit code %s\n' "$(meaning "$jcode")"

# ------------------------------------------------------------------ to come (issue 5)
# Here the demo will go on with the repair, once the commands exist:
#   sha256sum broken-gpt.img  > before.sha256
#   wuoffline fix --dry-run broken-gpt.img     (the plan: every byte range it would change)
#   wuoffline fix broken-gpt.img               (expect exit 0)
#   wuoffline diagnose broken-gpt.img          (expect exit 0: nothing left)
#   wuoffline undo broken-gpt.img              (expect exit 0)
#   sha256sum -c before.sha256                 (the image is byte-identical to the original)
# ------------------------------------------------------------------

hr "summary"
printf '%-16s %s\n' "broken-gpt:" "$(meaning "${code[broken-gpt]}")"
printf '%-16s %s\n' "healthy-gpt:" "$(meaning "${code[healthy-gpt]}")"
# Expected once diagnose is complete: broken-gpt 1, healthy-gpt 0.
if [ "${code[broken-gpt]}" = 1 ] && [ "${code[healthy-gpt]}" = 0 ]; then
	echo "demo: as expected (broken 1, healthy 0)"
else
	echo "demo: expected broken 1 and healthy 0 (diagnose may still be incomplete)"
fi
exit 0
