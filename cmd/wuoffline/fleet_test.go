package main

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFleetOrder: results are emitted in argument order although the
// later targets finish first, and at most jobs run at once.
func TestFleetOrder(t *testing.T) {
	targets := []string{"a", "b", "c", "d"}
	release := make(chan struct{}) // "a" finishes only once "d" has
	var emitted []string
	fleet(targets, 4, func(s string) string {
		switch s {
		case "a":
			<-release
		case "d":
			close(release)
		}
		return strings.ToUpper(s)
	}, func(i int, r string) {
		if r != strings.ToUpper(targets[i]) {
			t.Errorf("result %d is %q", i, r)
		}
		emitted = append(emitted, r)
	})
	if strings.Join(emitted, "") != "ABCD" {
		t.Errorf("emitted %v", emitted)
	}

	// --jobs 2: the first two hold until both are in; had a third started
	// it would be counted.
	var in, most atomic.Int32
	full := make(chan struct{})
	var once sync.Once
	fleet(make([]string, 9), 2, func(string) int {
		n := in.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == 2 {
			once.Do(func() { close(full) })
		}
		<-full
		in.Add(-1)
		return 0
	}, func(int, int) {})
	if most := most.Load(); most != 2 {
		t.Errorf("%d ran at once with --jobs 2", most)
	}
}

// TestFleetCommands: many targets give one report each in order, a
// summary line at the end of text, the worst exit code; a failed target
// does not stop the others.
func TestFleetCommands(t *testing.T) {
	healthy := extract(t, "healthy-tree.tar.gz")
	broken := extract(t, "broken-tree.tar.gz")
	missing := t.TempDir() + "/missing.img"
	code, out, _ := runCmd("diagnose", healthy, missing, broken, "--jobs", "2")
	if code != exitError {
		t.Errorf("exit %d, want %d (the worst)", code, exitError)
	}
	i, j, k := strings.Index(out, "== "+healthy), strings.Index(out, "== "+missing), strings.Index(out, "== "+broken)
	if !(0 <= i && i < j && j < k) || !strings.HasSuffix(out, "\n3 targets: 1 healthy, 1 failed, 1 to fix\n") {
		t.Errorf("order %d %d %d, or no summary:\n%s", i, j, k, out[max(0, len(out)-300):])
	}
	code, out, _ = runCmd("fix", "--dry-run", missing, broken)
	if code != exitError || !strings.HasSuffix(out, "\n2 targets: 1 failed, 1 planned\n") {
		t.Errorf("fix: exit %d\n%s", code, out[max(0, len(out)-300):])
	}
	for _, args := range [][]string{{"diagnose", "--jobs", "0", "x"}, {"fix", "--jobs", "-1", "x"}, {"undo", "--jobs", "many", "x"}} {
		if code, _, errs := runCmd(args...); code != exitUsage || !strings.Contains(errs, "--jobs") {
			t.Errorf("%q: exit %d %q", args, code, errs)
		}
	}
	// JSON Lines: one line per target, in order.
	_, out, _ = runCmd("undo", "--yes", "--json", missing, healthy)
	docs := jsonLines[map[string]any](t, out)
	if len(docs) != 2 || docs[0]["target"] != missing || docs[1]["target"] != healthy {
		t.Errorf("undo --json: %s", out)
	}
}
