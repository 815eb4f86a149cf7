#!/usr/bin/env bash
# make demo: the built-in example, end to end, in a temporary directory.
#
#   scripts/demo.sh BIN        (BIN: the wuoffline binary, e.g. bin/wuoffline)
#
# Decompresses the committed test images (testimages/data/*.gz, nothing but
# gzip needed), diagnoses a broken and a healthy Windows disk, and shows the
# exit codes, then repairs the broken one: dry run, fix, diagnose again,
# undo, and a sha256 comparison with the original. Exits 1 if anything is
# not as expected. The temporary directory is removed on exit.
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
# One JSON document a line (JSON Lines): indent it to read it.
python3 -m json.tool "$TMP/broken.json" >"$TMP/broken.pretty.json"
head -n 40 "$TMP/broken.pretty.json"
[ "$(wc -l <"$TMP/broken.pretty.json")" -gt 40 ] && echo "... ($(wc -l <"$TMP/broken.pretty.json") lines)"
[ -s "$TMP/broken.err" ] && { echo "(stderr:)"; head -n 10 "$TMP/broken.err"; }
printf -- '-> exit code %s\n' "$(meaning "$jcode")"

# ------------------------------------------------------------------ the repair
sha256sum "$TMP/broken-gpt.img" | sed "s|$TMP/||" >"$TMP/before.sha256"

hr "wuoffline fix --dry-run broken-gpt.img   (the plan; nothing is written)"
"$BIN" fix --dry-run "$TMP/broken-gpt.img"
code[dryrun]=$?
(cd "$TMP" && sha256sum --quiet -c before.sha256) && echo "-> image unchanged by the dry run" || code[dryrun]=99

hr "wuoffline fix --yes broken-gpt.img   (journal beside the image, write, verify)"
"$BIN" fix --yes "$TMP/broken-gpt.img"
code[fix]=$?
ls "$TMP" | grep -i journal | sed 's/^/   journal: /'

hr "wuoffline diagnose broken-gpt.img   (again, after the fix)"
"$BIN" diagnose "$TMP/broken-gpt.img"
code[after]=$?
printf -- '-> exit code %s\n' "$(meaning "${code[after]}")"

hr "wuoffline undo broken-gpt.img   (the original bytes, from the journal)"
"$BIN" undo --yes "$TMP/broken-gpt.img"
code[undo]=$?

hr "sha256 of the image after undo, compared with the original"
if (cd "$TMP" && sha256sum -c before.sha256); then code[same]=0; else code[same]=1; fi
# ------------------------------------------------------------------

hr "summary"
ok=1
expect() { # name got want what
	if [ "$2" = "$3" ]; then printf '  ok    %-34s exit %s\n' "$4" "$2"; else printf '  FAIL  %-34s exit %s, expected %s\n' "$4" "$2" "$3"; ok=0; fi
}
expect broken "${code[broken-gpt]}" 1 "diagnose broken-gpt (problems)"
expect healthy "${code[healthy-gpt]}" 0 "diagnose healthy-gpt (nothing)"
expect dryrun "${code[dryrun]}" 1 "fix --dry-run (changes planned)"
expect fix "${code[fix]}" 0 "fix (all fixed and verified)"
expect after "${code[after]}" 0 "diagnose after fix (healthy)"
expect undo "${code[undo]}" 0 "undo"
expect same "${code[same]}" 0 "image byte-identical after undo"
if [ $ok = 1 ]; then echo "demo: everything as expected"; exit 0; fi
echo "demo: something was not as expected (see above)" >&2
exit 1
