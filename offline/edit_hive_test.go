package offline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/internal/testutil"

	"github.com/wuoffline/wuoffline/session"
)

// countKeys counts the keys of a hive below k, k included.
func countKeys(t *testing.T, k *hive.Key) int {
	t.Helper()
	subs, err := k.Subkeys()
	if err != nil {
		t.Fatal(err)
	}
	n := 1
	for _, s := range subs {
		n += countKeys(t, s)
	}
	return n
}

// TestEditDirtyHive: a dirty hive (a Windows-made one from yarp's fixtures,
// with its LOG1/LOG2) is recovered from its logs before fix edits it, and
// what fix writes is a clean, consistent hive holding the recovered keys
// plus the edit.
func TestEditDirtyHive(t *testing.T) {
	src := testutil.SharedFixture(t, "hives/yarp/NewDirtyHive1")
	root := t.TempDir()
	cfg := filepath.Join(root, "Windows", "System32", "config")
	os.MkdirAll(cfg, 0o755)
	for from, to := range map[string]string{"NewDirtyHive": "COMPONENTS", "NewDirtyHive.LOG1": "COMPONENTS.LOG1", "NewDirtyHive.LOG2": "COMPONENTS.LOG2"} {
		b, err := os.ReadFile(filepath.Join(src, from))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(cfg, to), b, 0o644)
	}
	orig, _ := os.ReadFile(filepath.Join(cfg, "COMPONENTS"))
	logs, closers := session.HiveLogs(os.DirFS(root), "Windows/System32/config/COMPONENTS")
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	rec, err := hive.Open(bytes.NewReader(orig), int64(len(orig)), logs...)
	if err != nil || !rec.Dirty() || !rec.Recovered() {
		t.Fatalf("fixture: dirty %v recovered %v err %v", rec != nil && rec.Dirty(), rec != nil && rec.Recovered(), err)
	}
	root0, _ := rec.Root()
	want := countKeys(t, root0)

	ed := newDirEditor(root)
	ed.now = func() time.Time { return fixedNow }
	if _, err := ed.editHive("hive COMPONENTS", `Windows\System32\config\COMPONENTS`, nil, func(e *hive.Editor) error {
		return e.SetValue("", "WuofflineTest", hive.RegDWORD, []byte{1, 0, 0, 0})
	}); err != nil {
		t.Fatal(err)
	}
	out := ed.files[filepath.Join("Windows", "System32", "config", "COMPONENTS")]
	rep, err := hive.Check(bytes.NewReader(out), int64(len(out))) // no logs: must stand alone
	if err != nil || !rep.OK() {
		t.Fatalf("written hive: %v %v", err, rep)
	}
	h, err := hive.Open(bytes.NewReader(out), int64(len(out)))
	if err != nil || h.Dirty() {
		t.Fatalf("written hive: dirty or unreadable: %v", err)
	}
	r, _ := h.Root()
	if got := countKeys(t, r); got != want {
		t.Errorf("written hive has %d keys, the recovered one %d", got, want)
	}
	if v, err := r.Value("WuofflineTest"); err != nil {
		t.Errorf("edit missing: %v", err)
	} else if n, _ := v.Uint32(); n != 1 {
		t.Errorf("edit = %d", n)
	}
}
