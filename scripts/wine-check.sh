#!/usr/bin/env bash
# Runs the windows/amd64 build under Wine on the committed test images and
# compares its diagnose report with the Linux build's (they must be equal but
# for the path and line endings). Not part of `make test`: Wine is large.
#
#   apt-get install wine64 gcc-mingw-w64-x86-64-win32   (once)
#   scripts/wine-check.sh
#
# Go 1.24+ needs Windows 10's bcryptprimitives.dll (ProcessPrng), which Wine 8
# (Debian 12) lacks; a stand-in forwarding to RtlGenRandom is built with mingw
# into a private Wine prefix. Nothing outside that prefix is changed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WINE=${WINE:-$(command -v wine64 || echo /usr/lib/wine/wine64)}
[ -x "$WINE" ] || { echo "wine-check: wine64 not found (apt-get install wine64)" >&2; exit 2; }
command -v x86_64-w64-mingw32-gcc >/dev/null || { echo "wine-check: apt-get install gcc-mingw-w64-x86-64-win32" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wuoffline-wine.XXXXXX")
trap '"$(dirname "$WINE")/wineserver" -k 2>/dev/null; sleep 1; rm -rf "$TMP"' EXIT
export WINEDEBUG=-all WINEPREFIX=$TMP/prefix
cat >"$TMP/bcp.c" <<'C'
#include <windows.h>
typedef BOOLEAN (WINAPI *genrandom_t)(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    genrandom_t gen = (genrandom_t)GetProcAddress(LoadLibraryA("advapi32.dll"), "SystemFunction036");
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!gen || !gen(data, n)) return FALSE;
        data += n; len -= n;
    }
    return TRUE;
}
C
x86_64-w64-mingw32-gcc -shared -O2 -o "$TMP/bcryptprimitives.dll" "$TMP/bcp.c"
"$WINE" wineboot -i >/dev/null 2>&1 || true
cp "$TMP/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
(cd "$ROOT" && CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go build -o "$TMP/wuoffline.exe" ./cmd/wuoffline \
  && CGO_ENABLED=0 go build -o "$TMP/wuoffline" ./cmd/wuoffline)
fail=0
for img in broken-gpt:1 healthy-gpt:0 broken-mbr:1 refuse-hibernated:3; do
  name=${img%%:*}; want=${img##*:}
  gzip -dc "$ROOT/testimages/data/$name.img.gz" >"$TMP/$name.img"
  set +e
  "$WINE" "$TMP/wuoffline.exe" diagnose "Z:${TMP//\//\\}\\$name.img" >"$TMP/win.txt" 2>&1; wc=$?
  "$TMP/wuoffline" diagnose "$TMP/$name.img" >"$TMP/lin.txt" 2>&1; lc=$?
  set -e
  tr -d '\r' <"$TMP/win.txt" | sed "s|Z:${TMP//\//\\\\}\\\\||g" >"$TMP/win.norm"
  sed "s|$TMP/||g" "$TMP/lin.txt" >"$TMP/lin.norm"
  if [ "$wc" = "$want" ] && [ "$lc" = "$want" ] && cmp -s "$TMP/win.norm" "$TMP/lin.norm"; then
    echo "ok   $name: windows build and linux build agree (exit $wc)"
  else
    echo "FAIL $name: windows exit $wc, linux exit $lc, want $want"; diff "$TMP/win.norm" "$TMP/lin.norm" | head -20; fail=1
  fi
  rm -f "$TMP/$name.img"
done
exit $fail
