package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestCheckDefaultsToTouchedDirs: with no PATH, check covers the
// directories the newest journaled change touched. After moving catroot2
// from Windows\System32 to Windows, those must include both parents, whose
// MFT record numbers sleuthkit's ifind (an independent parser) reports.
func TestCheckDefaultsToTouchedDirs(t *testing.T) {
	ifind := testutil.RequireTool(t, "ifind")
	img := testutil.TestImage(t, "broken-gpt.img")
	if code, out, errs := ntRun("check", img); code != exitOK || !strings.Contains(out, "no fix or mv journal") {
		t.Fatalf("check before any change: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := ntRun("mv", "--yes", img, `Windows\System32\catroot2`, `Windows\catroot2.moved`); code != exitOK {
		t.Fatalf("mv: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs := ntRun("check", img)
	if code != exitOK {
		t.Fatalf("check after mv: exit %d\n%s%s", code, out, errs)
	}
	m := regexp.MustCompile(`MFT records ([0-9, ]+)\) touched by "mv `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("check after mv does not name the touched directories:\n%s", out)
	}
	checked := map[string]bool{}
	for _, n := range strings.Split(m[1], ", ") {
		checked[n] = true
	}
	tg, err := image.Open(img, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	var sector string
	for _, v := range tg.Volumes {
		if v.Index == 3 {
			sector = strconv.FormatInt(v.Offset/int64(tg.SectorSize), 10)
		}
	}
	for _, dir := range []string{"Windows", "Windows/System32"} {
		inode := strings.TrimSpace(string(testutil.Run(t, ifind, "-o", sector, "-n", dir, img)))
		if !checked[inode] {
			t.Errorf("%s (MFT record %s per ifind) was not among the checked directories %v", dir, inode, m[1])
		}
	}
}
