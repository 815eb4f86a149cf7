package offline

import (
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// BenchmarkFixUndo measures a whole fix (diagnose, plan, journal, write,
// verify, diagnose again) and its undo on the broken GPT disk, and reports
// the bytes each writes to the volume.
func BenchmarkFixUndo(b *testing.B) {
	img := testutil.TestImage(b, "broken-gpt.img")
	var written int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep := FixTarget(img, FixOptions{Now: fixedNow})
		if rep.State != FixDone {
			b.Fatalf("fix: %s %s", rep.State, rep.Error)
		}
		written = rep.Volumes[0].FileBytes
		if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitOK {
			b.Fatalf("undo: %+v", u)
		}
	}
	b.ReportMetric(float64(written), "bytes-written/fix")
}
