package offline

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"wuoffline/internal/testutil"
)

func TestDirFS(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "Windows", "system32", "Config"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "Windows", "system32", "Config", "SYSTEM"), []byte("regf"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "Windows", "system32", "Config", "software"), []byte("regf"), 0o644))
	must(os.Symlink("/etc", filepath.Join(dir, "Windows", "escape")))
	d, err := OpenDirFS(dir)
	must(err)
	defer d.Close()
	for _, p := range []string{"Windows/System32/config/SYSTEM", "WINDOWS/SYSTEM32/CONFIG/system", "windows/system32/config/Software"} {
		f, err := d.Open(p)
		if err != nil {
			t.Errorf("Open(%q): %v", p, err)
			continue
		}
		if _, ok := f.(io.ReaderAt); !ok {
			t.Errorf("Open(%q): no io.ReaderAt", p)
		}
		f.Close()
	}
	if !IsWindows(d) {
		t.Error("IsWindows = false")
	}
	if _, err := d.Stat("Windows/System32/config/COMPONENTS"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := d.Open("Windows/escape/passwd"); err == nil {
		t.Error("a symlink led outside the directory")
	}
	if _, err := d.Open("../x"); err == nil {
		t.Error("invalid path accepted")
	}
	ents, err := d.ReadDir("windows/SYSTEM32/config")
	if err != nil || len(ents) != 2 || ents[0].Name() != "SYSTEM" {
		t.Errorf("ReadDir: %v %v", ents, err)
	}
}

// findings is testimages/findings.json, decoded loosely: per image name,
// per check id, the planted evidence (strings that must appear in the
// check's evidence). nil when the file is absent.
func loadFindings(t *testing.T) map[string]map[string][]string {
	t.Helper()
	p := filepath.Join(testutil.RepoRoot(t), "testimages", "findings.json")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("findings.json: %v", err)
	}
	out := map[string]map[string][]string{}
	images, _ := raw["images"].(map[string]any)
	if images == nil {
		images = raw
	}
	ids := map[string]bool{}
	for _, id := range CheckIDs() {
		ids[id] = true
	}
	for name, v := range images {
		img, ok := v.(map[string]any)
		if !ok {
			continue
		}
		checks, _ := img["checks"].(map[string]any)
		if checks == nil {
			checks = img
		}
		m := map[string][]string{}
		for id, ev := range checks {
			if !ids[id] {
				continue
			}
			m[id] = append(m[id], evidenceStrings(ev)...)
		}
		out[strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".img")] = m
	}
	return out
}

// evidenceStrings flattens a findings entry to the strings it names.
func evidenceStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, evidenceStrings(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for k, e := range x {
			if k == "status" || k == "note" || k == "comment" {
				continue
			}
			out = append(out, evidenceStrings(e)...)
		}
		return out
	}
	return nil
}

// Built-in expectation when findings.json is absent: every check whose
// evidence the broken images carry.
var brokenProblems = []string{"pending-xml", "cbs-pending", "components-markers", "setup-execute", "pending-renames",
	"reboot-flags", "txr", "softwaredistribution", "catroot2", "services", "wu-policies", "hosts",
	"firewall"}

func sha256File(t *testing.T, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// evidenceText is everything a result says, for matching planted evidence.
func evidenceText(r Result) string {
	var b strings.Builder
	b.WriteString(r.Summary)
	for _, e := range r.Evidence {
		for _, s := range []string{e.Path, e.Hive, e.Key, e.Value, e.Data, e.Detail, e.Want} {
			b.WriteString("\n")
			b.WriteString(s)
		}
	}
	return strings.ToLower(strings.ReplaceAll(b.String(), "/", `\`))
}

func checkPlanted(t *testing.T, name string, in InstallationReport, findings map[string]map[string][]string) {
	t.Helper()
	byID := map[string]Result{}
	for _, r := range in.Checks {
		byID[r.ID] = r
	}
	if len(in.Checks) != len(Checks()) {
		t.Errorf("%d checks reported, want %d", len(in.Checks), len(Checks()))
	}
	want := map[string][]string{}
	if f, ok := findings[name]; ok {
		want = f
	} else {
		t.Logf("testimages/findings.json has no %s: using the built-in list of problems", name)
		for _, id := range brokenProblems {
			want[id] = nil
		}
	}
	for id, evs := range want {
		r, ok := byID[id]
		if !ok {
			t.Errorf("check %s missing", id)
			continue
		}
		if r.Status != StatusProblem {
			t.Errorf("%s: status %s (%s), want problem", id, r.Status, r.Summary)
			continue
		}
		txt := evidenceText(r)
		for _, e := range evs {
			if !strings.Contains(txt, strings.ToLower(strings.ReplaceAll(e, "/", `\`))) {
				t.Errorf("%s: planted evidence %q not reported; got:\n%s", id, e, txt)
			}
		}
	}
}

// TestDiagnoseImages runs diagnose on every built test image: the broken
// ones report every planted problem, the healthy twin none, every refusal
// variant exits 3 naming its reason, and nothing is ever written.
func TestDiagnoseImages(t *testing.T) {
	findings := loadFindings(t)
	tests := []struct {
		image   string
		exit    int
		refusal string
		broken  bool
	}{
		{"broken-gpt.img", ExitProblem, "", true},
		{"broken-mbr.img", ExitProblem, "", true},
		{"broken-4kn.img", ExitProblem, "", true},
		{"broken-volume.img", ExitProblem, "", true},
		{"healthy-gpt.img", ExitOK, "", false},
		{"refuse-bitlocker.img", ExitRefused, "bitlocker", false},
		{"refuse-dirty.img", ExitRefused, "dirty", true},
		{"refuse-hibernated.img", ExitRefused, "hibernated", true},
		{"refuse-faststartup.img", ExitRefused, "fast-startup", true},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "testimages", "data", tt.image+".gz")); err != nil {
				testutil.Unavailable(t, "test image %s not built: %v", tt.image, err)
			}
			p := testutil.TestImage(t, tt.image)
			before := sha256File(t, p)
			st, _ := os.Stat(p)
			tr := DiagnoseTarget(p, Options{Now: time.Date(2024, 9, 13, 0, 0, 0, 0, time.UTC)})
			if after := sha256File(t, p); after != before {
				t.Fatal("diagnose changed the image")
			}
			if st2, _ := os.Stat(p); !st2.ModTime().Equal(st.ModTime()) {
				t.Error("diagnose touched the image's modification time")
			}
			if tr.Exit != tt.exit {
				t.Errorf("exit %d, want %d (error %q, refusals %+v)", tr.Exit, tt.exit, tr.Error, tr.Refusals)
			}
			if tr.BytesRead <= 0 && tt.refusal != "bitlocker" {
				t.Errorf("bytes read = %d", tr.BytesRead)
			}
			if tt.refusal != "" {
				found := false
				for _, r := range tr.Refusals {
					found = found || r.ID == tt.refusal && r.Advice != ""
				}
				for _, in := range tr.Installations {
					for _, r := range in.Safety.Refusals {
						found = found || r.ID == tt.refusal && r.Advice != ""
					}
					if in.Safety.Writable {
						t.Error("refused installation reported writable")
					}
				}
				if !found {
					t.Errorf("refusal %q not reported: %+v / %+v", tt.refusal, tr.Refusals, tr.Installations)
				}
			}
			if tt.refusal == "bitlocker" {
				return
			}
			if len(tr.Installations) != 1 {
				t.Fatalf("%d installations, want 1 (volumes %+v, error %q)", len(tr.Installations), tr.Volumes, tr.Error)
			}
			in := tr.Installations[0]
			if in.Version.Build < 10240 || in.Version.Family == "" {
				t.Errorf("version %+v", in.Version)
			}
			if in.Version.Build >= 22000 && !strings.Contains(in.Version.Product, "Windows 11") {
				t.Errorf("build %d reported as %q", in.Version.Build, in.Version.Product)
			}
			if !strings.Contains(in.Commands[0].Line, `/offbootdir=D:\ /offwindir=D:\Windows`) {
				t.Errorf("sfc command %q", in.Commands[0].Line)
			}
			for _, r := range in.Checks {
				if r.Status == StatusFailed {
					t.Errorf("%s failed: %s", r.ID, r.Error)
				}
			}
			name := strings.TrimSuffix(tt.image, ".img")
			if tt.broken {
				checkPlanted(t, name, in, findings)
				if len(in.Cases) != 2 || in.Cases[0] != CaseStartup {
					t.Errorf("cases %v, want failed-startup then failed-installation", in.Cases)
				}
				return
			}
			for _, r := range in.Checks {
				if r.Status == StatusProblem {
					t.Errorf("healthy image: %s reports a problem: %s", r.ID, r.Summary)
				}
			}
			if len(in.Cases) != 1 || in.Cases[0] != CaseHealthy {
				t.Errorf("cases %v, want healthy", in.Cases)
			}
		})
	}
}

// extractTree unpacks a .tar.gz tree into a temp dir.
func extractTree(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join(testutil.RepoRoot(t), "testimages", "data", name)
	f, err := os.Open(src)
	if err != nil {
		testutil.Unavailable(t, "test tree %s: %v", name, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("tar member %q escapes", h.Name)
		}
		p := filepath.Join(dst, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			w, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			w.Close()
		}
	}
	// The tree may be packed inside one top directory.
	ents, _ := os.ReadDir(dst)
	if len(ents) == 1 && ents[0].IsDir() {
		if d := filepath.Join(dst, ents[0].Name()); IsWindowsDir(d) {
			return d
		}
	}
	return dst
}

// IsWindowsDir is a test helper: whether dir holds a Windows installation.
func IsWindowsDir(dir string) bool {
	d, err := OpenDirFS(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	return IsWindows(d)
}

// TestDiagnoseTrees: the mounted-directory target (the same Windows tree
// as the images, as a plain directory with its own letter case).
func TestDiagnoseTrees(t *testing.T) {
	findings := loadFindings(t)
	for _, tc := range []struct {
		name   string
		broken bool
	}{{"broken-tree.tar.gz", true}, {"healthy-tree.tar.gz", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := extractTree(t, tc.name)
			tr := DiagnoseTarget(dir, Options{Letter: "E:"})
			if tr.Kind != "directory" || len(tr.Installations) != 1 {
				t.Fatalf("kind %q, %d installations, error %q", tr.Kind, len(tr.Installations), tr.Error)
			}
			in := tr.Installations[0]
			if in.Letter != "E:" || !in.LetterKnown || in.Commands[0].Line != `sfc /scannow /offbootdir=E:\ /offwindir=E:\Windows` {
				t.Errorf("letter %q known %v, command %q", in.Letter, in.LetterKnown, in.Commands[0].Line)
			}
			if tc.broken {
				if tr.Exit != ExitProblem {
					t.Errorf("exit %d", tr.Exit)
				}
				name := strings.TrimSuffix(tc.name, ".tar.gz")
				if _, ok := findings[name]; !ok {
					name = "broken-gpt" // the tree is the broken image's volume
				}
				checkPlanted(t, name, in, findings)
				hasDism := false
				for _, c := range in.Commands {
					hasDism = hasDism || c.Line == `dism /Image:E:\ /Cleanup-Image /RevertPendingActions`
				}
				if !hasDism {
					t.Errorf("no dism command: %+v", in.Commands)
				}
				return
			}
			if tr.Exit != ExitOK {
				t.Errorf("healthy tree: exit %d", tr.Exit)
			}
			for _, r := range in.Checks {
				if r.Status == StatusProblem || r.Status == StatusFailed {
					t.Errorf("healthy tree: %s %s: %s %s", r.ID, r.Status, r.Summary, r.Error)
				}
			}
		})
	}
}

// TestDiagnoseParallelOrder: several targets at once, reported in
// argument order, with errors for what cannot be read.
func TestDiagnoseParallelOrder(t *testing.T) {
	healthy := extractTree(t, "healthy-tree.tar.gz")
	empty := t.TempDir()
	missing := filepath.Join(empty, "nope.img")
	rep := Diagnose([]string{missing, healthy, empty}, Options{Parallel: 3})
	if rep.SchemaVersion != 1 || len(rep.Targets) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for i, want := range []string{missing, healthy, empty} {
		if rep.Targets[i].Target != want {
			t.Errorf("target %d is %q, want %q", i, rep.Targets[i].Target, want)
		}
	}
	if rep.Targets[0].Exit != ExitError || rep.Targets[0].Error == "" {
		t.Errorf("missing target: exit %d error %q", rep.Targets[0].Exit, rep.Targets[0].Error)
	}
	if rep.Targets[1].Exit != ExitOK {
		t.Errorf("healthy: exit %d", rep.Targets[1].Exit)
	}
	if rep.Targets[2].Exit != ExitError || !strings.Contains(rep.Targets[2].Error, "no Windows") {
		t.Errorf("empty dir: exit %d error %q", rep.Targets[2].Exit, rep.Targets[2].Error)
	}
	if rep.Exit() != ExitError {
		t.Errorf("report exit %d", rep.Exit())
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"schema_version":1`, `"checks":[`, `"id":"pending-xml"`, `"status":"`, `"summary":"`, `"evidence":[`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

// BenchmarkDiagnoseBrokenGPT measures a whole diagnose of broken-gpt.img,
// reporting the bytes read from the image.
func BenchmarkDiagnoseBrokenGPT(b *testing.B) {
	p := testutil.TestImage(b, "broken-gpt.img")
	var read int64
	for b.Loop() {
		tr := DiagnoseTarget(p, Options{})
		if tr.Exit != ExitProblem {
			b.Fatalf("exit %d: %s", tr.Exit, tr.Error)
		}
		read = tr.BytesRead
	}
	st, _ := os.Stat(p)
	b.ReportMetric(float64(read), "bytes-read/op")
	b.ReportMetric(float64(read)/float64(st.Size())*100, "%-of-image")
}

// copyFile copies a fixture into the tree.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDirtyHive: a dirty hive is read in its recovered state (its logs are
// found beside it in any letter case); a hive whose logs cannot recover it
// makes fix refuse.
func TestDirtyHive(t *testing.T) {
	yarp := testutil.SharedFixture(t, "hives/yarp")
	for _, tc := range []struct {
		name, dir, base string
		logs            []string
		refused         bool
	}{
		{"recoverable", "NewDirtyHive1", "NewDirtyHive", []string{"LOG1", "LOG2"}, false},
		{"bad-log", "BadLogHive3", "BadLogHive", []string{"LOG1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := extractTree(t, "healthy-tree.tar.gz")
			d, err := OpenDirFS(root)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := d.resolve("t", "Windows/System32/config")
			d.Close()
			if err != nil {
				t.Fatal(err)
			}
			cfg = filepath.Join(root, filepath.FromSlash(cfg))
			ents, _ := os.ReadDir(cfg)
			for _, e := range ents {
				if strings.HasPrefix(strings.ToUpper(e.Name()), "COMPONENTS") {
					os.Remove(filepath.Join(cfg, e.Name()))
				}
			}
			copyFile(t, filepath.Join(yarp, tc.dir, tc.base), filepath.Join(cfg, "COMPONENTS"))
			for _, l := range tc.logs {
				// lower-case log names: found case-insensitively
				copyFile(t, filepath.Join(yarp, tc.dir, tc.base+"."+l), filepath.Join(cfg, "components."+strings.ToLower(l)))
			}
			tr := DiagnoseTarget(root, Options{})
			if len(tr.Installations) != 1 {
				t.Fatalf("installations: %+v %s", tr.Installations, tr.Error)
			}
			in := tr.Installations[0]
			var st *HiveState
			for i := range in.Safety.Hives {
				if in.Safety.Hives[i].Name == "COMPONENTS" {
					st = &in.Safety.Hives[i]
				}
			}
			if st == nil || !st.Present {
				t.Fatalf("COMPONENTS state %+v", in.Safety.Hives)
			}
			refused := false
			for _, r := range in.Safety.Refusals {
				refused = refused || r.ID == "hive"
			}
			if refused != tc.refused {
				t.Errorf("hive refusal %v, want %v (%+v, state %+v)", refused, tc.refused, in.Safety.Refusals, st)
			}
			if !tc.refused {
				if !st.Dirty || !st.Recovered || len(st.Logs) != len(tc.logs) {
					t.Errorf("state %+v: want dirty, recovered, %d logs", st, len(tc.logs))
				}
				if tr.Exit != ExitOK {
					t.Errorf("exit %d", tr.Exit)
				}
			} else if tr.Exit != ExitRefused {
				t.Errorf("exit %d, want 3", tr.Exit)
			}
		})
	}
}
