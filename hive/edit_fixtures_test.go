package hive

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// fixtureHives lists every hive file of the shared fixtures (yarp,
// regipy, hivex) and the hives the project builds with hivex
// (testimages/data/hives), with the logs found beside each.
func fixtureHives(t *testing.T) (hives []string, logs map[string][]string) {
	t.Helper()
	logs = map[string][]string{}
	root := filepath.Dir(testutil.SharedFixture(t, "hives/yarp/EmptyHive"))
	root = filepath.Dir(root)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := strings.ToLower(d.Name())
		if strings.Contains(base, ".log") || strings.HasSuffix(base, ".md") || strings.HasPrefix(base, "readme") {
			return nil
		}
		hives = append(hives, p)
		for _, ext := range []string{".LOG1", ".LOG2", ".LOG"} {
			if _, err := os.Stat(p + ext); err == nil {
				logs[p] = append(logs[p], p+ext)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	built, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(t), "testimages", "data", "hives", "*.gz"))
	hives = append(hives, built...)
	return hives, logs
}

// TestEditFixtures edits every fixture hive. A hive our checker passes must
// take a set of edits (new keys with non-ASCII names, values of every
// storage kind, deleting a real subtree) and come out clean, matching the
// model, and readable by hivexregedit with the same export as ours. A
// damaged hive may refuse edits, but only with an error: never a panic.
func TestEditFixtures(t *testing.T) {
	hivex, _ := exec.LookPath("hivexregedit")
	hives, logs := fixtureHives(t)
	edited := 0
	for _, src := range hives {
		name := strings.TrimPrefix(src, filepath.Dir(filepath.Dir(filepath.Dir(src)))+"/")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := testutil.Decompress(t, src, "")
			path := copyTo(t, p, dir, "hive")
			var lps []string
			for i, l := range logs[src] {
				lps = append(lps, copyTo(t, l, dir, "hive.LOG"+string(rune('1'+i))))
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			var hl []Log
			for _, lp := range lps {
				b, _ := os.ReadFile(lp)
				hl = append(hl, Log{Name: lp, R: bytes.NewReader(b), Size: int64(len(b))})
			}
			h, err := Open(f, st.Size(), hl...)
			if err != nil {
				t.Logf("not opened (reader's verdict): %v", err)
				return
			}
			preReport := h.Check()
			pre := preReport.Problems()
			e, err := NewEditor(h, f, func(n int64) error { return f.Truncate(n) }, hl...)
			if err != nil {
				t.Logf("editor refused: %v", err)
				return
			}
			err = editSequence(t, e)
			if len(pre) > 0 {
				// Damaged: edits may fail (never panic). What was done
				// before a failure that changed nothing can be written,
				// and must add no problem of its own.
				ferr := e.Flush()
				t.Logf("damaged hive (%d checker errors); edit: %v; flush: %v", len(pre), err, ferr)
				if ferr == nil {
					reopen(t, path, preReport.Findings...)
				}
				return
			}
			if err != nil {
				t.Fatalf("edit of a hive the checker passes: %v", err)
			}
			m := loadModel(t, h)
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
			h2 := reopen(t, path, preReport.Findings...)
			compareKey(t, mustRoot(t, h2), m, true)
			edited++
			if hivex == "" {
				testutil.Unavailable(t, "hivexregedit")
				return
			}
			theirs, err := exec.Command(hivex, "--export", path, `\`).Output()
			if err != nil {
				// hivex's own limits (e.g. its tombstone handling) are
				// checked on the untouched file: it must fail there too.
				if _, err0 := exec.Command(hivex, "--export", p, `\`).Output(); err0 == nil {
					t.Fatalf("hivexregedit reads the original but not the edited hive: %v", err)
				}
				t.Logf("hivexregedit fails on this hive before and after the edit")
				return
			}
			if ours := regExport(t, h2); ours != string(theirs) {
				t.Fatalf("hivexregedit export differs from ours")
			}
		})
	}
	t.Logf("%d hives edited and verified", edited)
}

// editSequence is the standard set of edits for TestEditFixtures.
func editSequence(t *testing.T, e *Editor) error {
	big := bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, 9000) // 36000 bytes
	steps := []func() error{
		func() error { _, err := e.CreateKey(`WuoFix\Ünïcødé\Кириллица`); return err },
		func() error { _, err := e.CreateKey(`WuoFix\ı`); return err },
		func() error { _, err := e.CreateKey(`WuoFix\I`); return err },
		func() error { _, err := e.CreateKey(`wuofix\ſ`); return err },
		func() error {
			return e.SetValue(`WuoFix\Ünïcødé`, "sz", RegSZ, utf16z("Ünïcødé Кириллица"))
		},
		func() error { return e.SetValue(`WuoFix\Ünïcødé`, "dw", RegDWORD, []byte{1, 2, 3, 4}) },
		func() error { return e.SetValue(`WuoFix\Ünïcødé`, "big", RegBinary, big) },
		func() error { return e.SetValue(`WuoFix\Ünïcødé`, "big", RegBinary, big[:5000]) },
		func() error { return e.SetValue(`WuoFix\Ünïcødé`, "", RegMultiSZ, append(utf16z("a"), 0, 0)) },
		func() error { return e.DeleteValue(`WuoFix\Ünïcødé`, "DW") },
		func() error { return e.DeleteKey(`WuoFix\ı`) },
		func() error {
			// Delete a real key: the last subkey of the root, if its
			// subtree is small.
			root, err := e.Hive().Root()
			if err != nil {
				return err
			}
			subs, err := root.Subkeys()
			if err != nil {
				return err
			}
			for i := len(subs) - 1; i >= 0; i-- {
				if strings.EqualFold(subs[i].Name(), "WuoFix") {
					continue
				}
				if n, err := subtreeSize(subs[i], 2000); err != nil {
					return err
				} else if n > 2000 {
					continue
				}
				return e.DeleteKey(subs[i].Path())
			}
			return nil
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			if errors.Is(err, ErrNoGrow) {
				return err
			}
			return err
		}
	}
	return nil
}

// subtreeSize counts the keys of k's subtree, stopping past limit.
func subtreeSize(k *Key, limit int) (int, error) {
	n := 1
	subs, err := k.Subkeys()
	if err != nil {
		return 0, err
	}
	for _, s := range subs {
		if n > limit {
			break
		}
		m, err := subtreeSize(s, limit-n)
		if err != nil {
			return 0, err
		}
		n += m
	}
	return n, nil
}
