package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/offline"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestDiagnoseUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{[]string{"diagnose", "--help"}, exitOK, "Exit codes:", ""},
		{[]string{"diagnose", "-h"}, exitOK, "--json", ""},
		{[]string{"diagnose"}, exitUsage, "", "no TARGET"},
		{[]string{"diagnose", "--bogus", "x"}, exitUsage, "", "unknown option: --bogus"},
		{[]string{"diagnose", "--letter", "DD", "x"}, exitUsage, "", "not a drive letter"},
	}
	for _, tt := range tests {
		code, out, errs := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errs, tt.err) {
			t.Errorf("%v: code %d (want %d)\nstdout %q\nstderr %q", tt.args, code, tt.code, clipText(out, 200), errs)
		}
	}
	if runtime.GOOS != "windows" {
		code, _, errs := runCmd("diagnose", "D:")
		if code != exitError || !strings.Contains(errs, "/dev/") {
			t.Errorf("D: on %s: code %d, stderr %q", runtime.GOOS, code, errs)
		}
	}
	// The help names every exit code and every check id.
	_, help, _ := runCmd("diagnose", "--help")
	for _, s := range append([]string{"0  nothing", "1  problems", "2  usage", "3  ", "4  other"}, offline.CheckIDs()...) {
		if !strings.Contains(help, s) {
			t.Errorf("--help lacks %q", s)
		}
	}
}

func extract(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(testutil.RepoRoot(t), "testimages", "data", name))
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
			os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			w, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(w, tr)
			w.Close()
		}
	}
	return dst
}

func TestDiagnoseText(t *testing.T) {
	broken := extract(t, "broken-tree.tar.gz")
	code, out, _ := runCmd("diagnose", "--letter", "f:", broken)
	if code != exitProblem {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// Grouped by case, failed startup first; problems with evidence and fix;
	// commands with the user's letter.
	order := []string{"FAILED STARTUP", "PROBLEM [pending-xml]", "fix: ", "FAILED INSTALLATION", "PROBLEM [softwaredistribution]",
		"Evidence in logs:", `sfc /scannow /offbootdir=F:\ /offwindir=F:\Windows`, `dism /Image:F:\ /Cleanup-Image /RevertPendingActions`, "-> exit 1"}
	pos := 0
	for _, s := range order {
		i := strings.Index(out[pos:], s)
		if i < 0 {
			t.Fatalf("%q missing (or out of order) in:\n%s", s, out)
		}
		pos += i
	}
	if strings.Contains(out, "placeholder") {
		t.Error("letter given, yet called a placeholder")
	}
}

func TestDiagnoseJSON(t *testing.T) {
	healthy := extract(t, "healthy-tree.tar.gz")
	broken := extract(t, "broken-tree.tar.gz")
	code, out, _ := runCmd("diagnose", "--json", healthy, broken)
	if code != exitProblem {
		t.Fatalf("exit %d", code)
	}
	docs := jsonLines[offline.DiagnoseDocument](t, out)
	var rep offline.Report
	for _, d := range docs {
		if d.SchemaVersion != offline.SchemaVersion || d.Command != "diagnose" || d.Tool != "wuoffline" || d.ToolVersion == "" || d.Timestamp == "" {
			t.Errorf("header %+v", d.Header)
		}
		rep.Targets = append(rep.Targets, d.TargetReport)
	}
	if len(rep.Targets) != 2 || rep.Targets[0].Target != healthy || rep.Targets[1].Target != broken {
		t.Fatalf("report: %d targets", len(rep.Targets))
	}
	valid := map[offline.Status]bool{"ok": true, "problem": true, "info": true, "fixed": true, "skipped": true, "failed": true}
	for _, tr := range rep.Targets {
		for _, in := range tr.Installations {
			if len(in.Checks) != len(offline.CheckIDs()) {
				t.Errorf("%d checks", len(in.Checks))
			}
			for i, c := range in.Checks {
				if c.ID != offline.CheckIDs()[i] || !valid[c.Status] || c.Summary == "" || c.Evidence == nil {
					t.Errorf("check %+v", c)
				}
			}
		}
	}
	if rep.Targets[0].Exit != exitOK || rep.Targets[1].Exit != exitProblem {
		t.Errorf("per-target exits %d %d", rep.Targets[0].Exit, rep.Targets[1].Exit)
	}
}

func TestDiagnoseRefusedImage(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "testimages", "data", "refuse-dirty.img.gz")); err != nil {
		testutil.Unavailable(t, "refuse-dirty.img not built")
	}
	p := testutil.TestImage(t, "refuse-dirty.img")
	code, out, _ := runCmd("diagnose", p)
	if code != exitRefused || !strings.Contains(out, "[dirty]") || !strings.Contains(out, "what to do: ") || !strings.Contains(out, "chkdsk") {
		t.Errorf("exit %d\n%s", code, out)
	}
	// the report still shows what it could read
	if !strings.Contains(out, "PROBLEM [pending-xml]") {
		t.Error("refused report lacks the problems it read")
	}
}

// jsonLines decodes JSON Lines output: one document a line.
func jsonLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var docs []T
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var d T
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("line %d is not a JSON document: %v\n%s", i+1, err, clipText(line, 500))
		}
		docs = append(docs, d)
	}
	return docs
}
