package hive

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// openFile opens a hive file (with optional log files) for a test.
func openFile(t testing.TB, path string, logPaths ...string) (*Hive, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Open(f, st.Size(), openLogs(t, logPaths...)...)
}

// openLogs opens log files for a test, closed when it ends.
func openLogs(t testing.TB, paths ...string) []Log {
	t.Helper()
	var logs []Log
	for _, lp := range paths {
		lf, err := os.Open(lp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lf.Close() })
		lst, err := lf.Stat()
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, Log{Name: filepath.Base(lp), R: lf, Size: lst.Size()})
	}
	return logs
}

// yarp returns the path of a yarp fixture.
func yarp(t testing.TB, rel string) string {
	t.Helper()
	return testutil.SharedFixture(t, "hives/yarp/"+rel)
}

// mustOpen opens a yarp fixture that must open.
func mustOpen(t testing.TB, rel string, logs ...string) *Hive {
	t.Helper()
	var lp []string
	for _, l := range logs {
		lp = append(lp, yarp(t, l))
	}
	h, err := openFile(t, yarp(t, rel), lp...)
	if err != nil {
		t.Fatalf("Open(%s): %v", rel, err)
	}
	return h
}
