package offline

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
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

// findings is testimages/findings.json (written by the testimages helper
// from the tables that planted the evidence): per image and tree its
// profile, refusal and exit code; per profile the Windows version, the
// control set, and per check id of repair-catalog.md the expected status
// and the planted evidence.
type findings struct {
	FixedTime time.Time                  `json:"fixed_time"`
	Images    map[string]findingsImage   `json:"images"`
	Trees     map[string]findingsImage   `json:"trees"`
	Profiles  map[string]findingsProfile `json:"profiles"`
}

type findingsImage struct {
	Profile  string  `json:"profile"`
	Refusal  *string `json:"refusal"`
	ExitCode *int    `json:"exit_code"`
}

type findingsProfile struct {
	Windows struct {
		CurrentBuild   string `json:"CurrentBuild"`
		UBR            int    `json:"UBR"`
		DisplayVersion string `json:"DisplayVersion"`
		Major          int    `json:"major"`
	} `json:"windows"`
	Select struct {
		Current int `json:"current"`
	} `json:"select"`
	Checks map[string]map[string]any `json:"checks"`
	Logs   map[string]map[string]any `json:"logs"`
}

func loadFindings(t *testing.T) *findings {
	t.Helper()
	p := filepath.Join(testutil.RepoRoot(t), "testimages", "findings.json")
	b, err := os.ReadFile(p)
	if err != nil {
		testutil.Unavailable(t, "testimages/findings.json: %v", err)
	}
	var f findings
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("findings.json: %v", err)
	}
	return &f
}

// strs returns the strings of a JSON list (or the single string).
func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// keys returns the keys of a JSON object, each reduced to its last
// `\`-separated element ("AU\\NoAutoUpdate" -> "NoAutoUpdate").
func keys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		if i := strings.LastIndexByte(k, '\\'); i >= 0 {
			k = k[i+1:]
		}
		out = append(out, k)
	}
	return out
}

// dropHive removes a leading hive name: evidence carries Hive and Key apart.
func dropHive(s string) string {
	for _, h := range []string{"SYSTEM\\", "SOFTWARE\\", "COMPONENTS\\"} {
		s = strings.TrimPrefix(s, h)
	}
	return s
}

// planted extracts, per check id, the strings that the check's evidence
// must contain.
func planted(id string, c map[string]any) []string {
	var out []string
	switch id {
	case "softwaredistribution":
		if ev, ok := c["evidence"].(map[string]any); ok {
			if d, ok := ev["datastore_edb"].(map[string]any); ok {
				out = append(out, strs(d["path"])...)
			}
			if l, ok := ev["download_bad"].([]any); ok {
				for _, e := range l {
					if m, ok := e.(map[string]any); ok {
						out = append(out, strs(m["path"])...)
					}
				}
			}
		}
	case "catroot2":
		out = append(strs(c["path"]), "dberr.txt")
	case "services":
		for _, k := range []string{"disabled", "missing", "missing_imagepath", "changed"} {
			for _, s := range strs(c[k]) {
				out = append(out, `services\`+s)
			}
		}
		out = append(out, strs(c["control_set"])...)
	case "wu-policies", "firewall", "components-markers":
		out = append(keys(c["delete"]), keys(c["wsus"])...)
		if m, ok := c["delete"].(map[string]any); ok {
			for _, v := range m {
				if vm, ok := v.(map[string]any); ok {
					out = append(out, strs(vm["text_utf16le"])...)
				}
			}
		}
	case "hosts":
		out = strs(c["lines"])
	case "proxy":
		m, _ := c["values"].(map[string]any)
		for k, v := range m {
			out = append(out, strings.TrimSuffix(dropHive(k), `\WinHttpSettings`))
			if vm, ok := v.(map[string]any); ok {
				out = append(out, strs(vm["proxy"])...)
			}
		}
	case "pending-xml":
		out = strs(c["files"])
	case "cbs-pending":
		out = strs(c["delete_keys"])
		if l, ok := c["sessions_pending"].([]any); ok {
			for _, e := range l {
				if m, ok := e.(map[string]any); ok {
					out = append(out, strs(m["id"])...)
				}
			}
		}
	case "setup-execute":
		out = strs(c["remove"])
	case "pending-renames":
		m, _ := c["values"].(map[string]any)
		for _, v := range m {
			l, _ := v.([]any)
			for _, e := range l {
				pm, _ := e.(map[string]any)
				for _, k := range []string{"source", "destination"} {
					for _, s := range strs(pm[k]) {
						if s = strings.TrimPrefix(strings.TrimPrefix(s, "*1"), "!"); s != "" {
							out = append(out, s)
						}
					}
				}
			}
		}
	case "reboot-flags":
		for _, s := range strs(c["delete_keys"]) {
			out = append(out, dropHive(s))
		}
	case "txr":
		out = []string{`config\TxR`}
	case "minifilters":
		out = append(keys(c["instances"]), strs(c["fsrm"])...)
	default:
		// The checks of the tools' damage list their planted evidence.
		out = strs(c["evidence"])
	}
	return out
}

// checkActions: the values fix deletes by default carry that action, the
// WSUS ones need the opt-in, and what must be left alone is not listed.
func checkActions(t *testing.T, prof findingsProfile, byID map[string]Result) {
	t.Helper()
	for _, id := range []string{"wu-policies", "firewall", "components-markers"} {
		c := prof.Checks[id]
		r := byID[id]
		find := func(name string) *Evidence {
			for i := range r.Evidence {
				if strings.EqualFold(r.Evidence[i].Value, name) && r.Evidence[i].Kind == "value" {
					return &r.Evidence[i]
				}
			}
			return nil
		}
		for _, name := range keys(c["delete"]) {
			if e := find(name); e == nil || e.Op != "delete-value" || e.OptIn != "" {
				t.Errorf("%s: %s should be deleted by default: %+v", id, name, e)
			}
		}
		for _, name := range keys(c["wsus"]) {
			if e := find(name); e == nil || e.Op != "delete-value" || e.OptIn != "wsus" {
				t.Errorf("%s: %s should need opt-in wsus: %+v", id, name, e)
			}
		}
		left := keys(c["left_alone"])
		left = append(left, strs(c["left_alone"])...)
		for _, name := range left {
			if e := find(name); e != nil {
				t.Errorf("%s: %s must be left alone, yet reported: %+v", id, name, e)
			}
		}
	}
	checkServiceActions(t, prof, byID)
	if h := prof.Checks["hosts"]; h != nil {
		r := byID["hosts"]
		for _, line := range strs(h["left_alone"]) {
			for _, e := range r.Evidence {
				if e.Old == line {
					t.Errorf("hosts: line %q must be left alone", line)
				}
			}
		}
		for _, e := range r.Evidence {
			if e.Op != "comment-out" || e.Line == 0 {
				t.Errorf("hosts evidence %+v", e)
			}
		}
	}
}

// checkProfile asserts every check's status and planted evidence, the
// version and the control set, as findings.json lists them for a profile.
func checkProfile(t *testing.T, f *findings, profile string, in InstallationReport) {
	t.Helper()
	prof, ok := f.Profiles[profile]
	if !ok {
		t.Fatalf("findings.json has no profile %q", profile)
	}
	if len(in.Checks) != len(Checks()) {
		t.Errorf("%d checks reported, want %d", len(in.Checks), len(Checks()))
	}
	byID := map[string]Result{}
	for _, r := range in.Checks {
		byID[r.ID] = r
	}
	for _, id := range CheckIDs() {
		c, ok := prof.Checks[id]
		if !ok {
			t.Errorf("findings.json: profile %s lacks check %s", profile, id)
			continue
		}
		r := byID[id]
		if want, _ := c["status"].(string); string(r.Status) != want {
			t.Errorf("%s: status %s (%s), want %s", id, r.Status, r.Summary, want)
			continue
		}
		// Planted evidence is what a problem (or the minifilter report)
		// must show; info entries of a healthy tree describe normal state.
		if r.Status != StatusProblem && id != "minifilters" {
			continue
		}
		txt := evidenceText(r)
		for _, e := range planted(id, c) {
			if !strings.Contains(txt, strings.ToLower(strings.ReplaceAll(e, "/", `\`))) {
				t.Errorf("%s: planted evidence %q not reported; got:\n%s", id, e, txt)
			}
		}
	}
	checkActions(t, prof, byID)
	if b := strconv.Itoa(in.Version.Build); b != prof.Windows.CurrentBuild || in.Version.UBR != prof.Windows.UBR || in.Version.DisplayVersion != prof.Windows.DisplayVersion {
		t.Errorf("version %+v, want build %s.%d %s", in.Version, prof.Windows.CurrentBuild, prof.Windows.UBR, prof.Windows.DisplayVersion)
	}
	if !strings.Contains(in.Version.Product, "Windows "+strconv.Itoa(prof.Windows.Major)) {
		t.Errorf("product %q, want Windows %d", in.Version.Product, prof.Windows.Major)
	}
	if in.Safety.ControlSet != prof.Select.Current {
		t.Errorf("control set %d, want %d", in.Safety.ControlSet, prof.Select.Current)
	}
	// Log evidence: Startup Repair's root cause, CBS's missing files.
	logs := map[string]LogFinding{}
	for _, l := range in.Logs {
		logs[strings.ToLower(strings.ReplaceAll(l.Path, `\`, "/"))] = l
	}
	for file, want := range prof.Logs {
		got, ok := logs[strings.ToLower(file)]
		if rc, _ := want["root_cause"].(string); rc != "" && (!ok || !slices.Contains(got.RootCauses, rc)) {
			t.Errorf("%s: root cause %q not reported (%+v)", file, rc, got.RootCauses)
		}
		for _, m := range strs(want["failed_to_find_file"]) {
			if !ok || !slices.Contains(got.MissingFiles, m) {
				t.Errorf("%s: missing file %q not reported (%v)", file, m, got.MissingFiles)
			}
		}
		if kb, _ := want["kb"].(string); kb != "" && (!ok || !slices.Contains(got.KBs, kb)) {
			t.Errorf("%s: %s not reported (%v)", file, kb, got.KBs)
		}
	}
}

// evidenceText is everything a result says, for matching planted evidence.
func evidenceText(r Result) string {
	var b strings.Builder
	b.WriteString(r.Summary)
	for _, e := range r.Evidence {
		for _, s := range []string{e.Path, e.Hive, e.Key, e.Value, e.Old, e.Detail, e.New} {
			b.WriteString("\n")
			b.WriteString(s)
		}
	}
	return strings.ToLower(strings.ReplaceAll(b.String(), "/", `\`))
}

// TestDiagnoseImages runs diagnose on every built test image that
// findings.json lists: the broken ones report every planted problem with
// its evidence, the healthy twin none, every refusal variant exits 3
// naming its reason, and nothing is ever written.
func TestDiagnoseImages(t *testing.T) {
	f := loadFindings(t)
	names := make([]string, 0, len(f.Images))
	for n := range f.Images {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		img := f.Images[name]
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(testutil.RepoRoot(t), "testimages", "data", name+".gz")); err != nil {
				testutil.Unavailable(t, "test image %s not built: %v", name, err)
			}
			p := testutil.TestImage(t, name)
			before := testutil.SHA256File(t, p)
			st, _ := os.Stat(p)
			tr := DiagnoseTarget(p, Options{Now: f.FixedTime})
			if after := testutil.SHA256File(t, p); after != before {
				t.Fatal("diagnose changed the image")
			}
			if st2, _ := os.Stat(p); !st2.ModTime().Equal(st.ModTime()) {
				t.Error("diagnose touched the image's modification time")
			}
			if img.ExitCode == nil || tr.Exit != *img.ExitCode {
				t.Errorf("exit %d, want %v (error %q, refusals %+v)", tr.Exit, img.ExitCode, tr.Error, tr.Refusals)
			}
			refusal := ""
			if img.Refusal != nil {
				refusal = *img.Refusal
			}
			if tr.IO == nil || tr.IO.Opens != 1 || refusal != "bitlocker" && (tr.IO.Reads <= 0 || tr.IO.BytesRead <= 0) {
				t.Errorf("io = %+v, want one open and some reads", tr.IO)
			}
			if refusal != "" {
				found := false
				for _, r := range tr.Refusals {
					found = found || r.ID == refusal && r.Advice != ""
				}
				for _, in := range tr.Installations {
					for _, r := range in.Safety.Refusals {
						found = found || r.ID == refusal && r.Advice != ""
					}
					if in.Safety.Writable {
						t.Error("refused installation reported writable")
					}
				}
				if !found {
					t.Errorf("refusal %q not reported: %+v / %+v", refusal, tr.Refusals, tr.Installations)
				}
			}
			if refusal == "bitlocker" {
				if len(tr.Installations) != 0 {
					t.Errorf("installations read through BitLocker: %+v", tr.Installations)
				}
				return
			}
			if len(tr.Installations) != 1 {
				t.Fatalf("%d installations, want 1 (volumes %+v, error %q)", len(tr.Installations), tr.Volumes, tr.Error)
			}
			in := tr.Installations[0]
			if !strings.Contains(in.Commands[0].Line, `/offbootdir=D:\ /offwindir=D:\Windows`) || in.LetterKnown {
				t.Errorf("sfc command %q (letter known %v)", in.Commands[0].Line, in.LetterKnown)
			}
			for _, r := range in.Checks {
				if r.Status == StatusFailed {
					t.Errorf("%s failed: %s", r.ID, r.Error)
				}
			}
			checkProfile(t, f, img.Profile, in)
			checkCases(t, in)
		})
	}
}

// checkCases: the cases follow the problems, failed startup first.
func checkCases(t *testing.T, in InstallationReport) {
	t.Helper()
	startup, install := false, false
	for _, r := range in.Checks {
		if r.Status == StatusProblem {
			startup = startup || r.Case == CaseStartup
			install = install || r.Case == CaseInstall
		}
	}
	var want []Case
	if startup {
		want = append(want, CaseStartup)
	}
	if install {
		want = append(want, CaseInstall)
	}
	if len(want) == 0 {
		want = []Case{CaseHealthy}
	}
	if !slices.Equal(in.Cases, want) {
		t.Errorf("cases %v, want %v", in.Cases, want)
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

// TestDiagnoseTrees: the mounted-directory target (the same Windows trees
// as the images, as plain directories), with the user's drive letter.
func TestDiagnoseTrees(t *testing.T) {
	f := loadFindings(t)
	for name, tree := range f.Trees {
		t.Run(name, func(t *testing.T) {
			dir := extractTree(t, name)
			tr := DiagnoseTarget(dir, Options{Letter: "E:", Now: f.FixedTime})
			if tr.Kind != "directory" || len(tr.Installations) != 1 {
				t.Fatalf("kind %q, %d installations, error %q", tr.Kind, len(tr.Installations), tr.Error)
			}
			in := tr.Installations[0]
			if in.Letter != "E:" || !in.LetterKnown || in.Commands[0].Line != `sfc /scannow /offbootdir=E:\ /offwindir=E:\Windows` {
				t.Errorf("letter %q known %v, command %q", in.Letter, in.LetterKnown, in.Commands[0].Line)
			}
			checkProfile(t, f, tree.Profile, in)
			checkCases(t, in)
			startup := slices.Contains(in.Cases, CaseStartup)
			hasDism := false
			for _, c := range in.Commands {
				hasDism = hasDism || c.Line == `dism /Image:E:\ /Cleanup-Image /RevertPendingActions`
			}
			if hasDism != startup {
				t.Errorf("dism command present %v, failed startup %v: %+v", hasDism, startup, in.Commands)
			}
			want := ExitOK
			if slices.Contains(in.Cases, CaseStartup) || slices.Contains(in.Cases, CaseInstall) {
				want = ExitProblem
			}
			if tr.Exit != want {
				t.Errorf("exit %d, want %d", tr.Exit, want)
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
	if rep.SchemaVersion != SchemaVersion || len(rep.Targets) != 3 {
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
	for _, key := range []string{fmt.Sprintf(`"schema_version":%d`, SchemaVersion), `"checks":[`, `"id":"pending-xml"`, `"status":"`, `"summary":"`, `"evidence":[`} {
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
		read = tr.IO.BytesRead
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
	root := extractTree(t, "healthy-tree.tar.gz")
	for _, tc := range []struct {
		name, dir, base string
		logs            []string
		refused         bool
	}{
		{"recoverable", "NewDirtyHive1", "NewDirtyHive", []string{"LOG1", "LOG2"}, false},
		{"bad-log", "BadLogHive3", "BadLogHive", []string{"LOG1"}, true},
	} {
		// one tree; each case replaces COMPONENTS and its logs
		t.Run(tc.name, func(t *testing.T) {
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

// setSelectCurrent rewrites SYSTEM\Select\Current with hivex (an
// independent implementation) in a copy of a tree.
func setSelectCurrent(t *testing.T, system string, current uint32) {
	t.Helper()
	// python3-hivex is a Debian package: prefer the system interpreter
	// (a pyenv python3 earlier on PATH does not see it).
	py := ""
	for _, c := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(c, "-c", "import hivex").Run() == nil {
			py = c
			break
		}
	}
	if py == "" {
		testutil.Unavailable(t, "python3 with the hivex module (apt-get install python3-hivex)")
	}
	script := `
import sys, struct, hivex
h = hivex.Hivex(sys.argv[1], write=True)
sel = h.node_get_child(h.root(), "Select")
h.node_set_value(sel, {"key": "Current", "t": 4, "value": struct.pack("<I", int(sys.argv[2]))})
h.commit(None)
`
	out, err := exec.Command(py, "-c", script, system, strconv.Itoa(int(current))).CombinedOutput()
	if err != nil {
		testutil.Unavailable(t, "python3-hivex: %v\n%s", err, out)
	}
}

// TestControlSetRule: SYSTEM\Select\Current outside 1..999 or naming a
// missing control set makes fix refuse; ControlSet001 is read for the
// report only.
func TestControlSetRule(t *testing.T) {
	root := extractTree(t, "healthy-tree.tar.gz")
	for _, tc := range []struct {
		current uint32
		refused bool
	}{{7, true}, {0, true}, {1000, true}, {1, false}} {
		// one tree; each case rewrites the value
		t.Run(strconv.Itoa(int(tc.current)), func(t *testing.T) {
			d, err := OpenDirFS(root)
			if err != nil {
				t.Fatal(err)
			}
			sys, err := d.resolve("t", systemHivePath)
			d.Close()
			if err != nil {
				t.Fatal(err)
			}
			setSelectCurrent(t, filepath.Join(root, filepath.FromSlash(sys)), tc.current)
			tr := DiagnoseTarget(root, Options{})
			if len(tr.Installations) != 1 {
				t.Fatalf("%+v", tr)
			}
			in := tr.Installations[0]
			refused := false
			for _, r := range in.Safety.Refusals {
				refused = refused || r.ID == "control-set"
			}
			if refused != tc.refused {
				t.Errorf("control-set refusal %v, want %v (%+v)", refused, tc.refused, in.Safety.Refusals)
			}
			wantCS := int(tc.current)
			if tc.refused {
				wantCS = 0
				if tr.Exit != ExitRefused {
					t.Errorf("exit %d, want 3", tr.Exit)
				}
			}
			if in.Safety.ControlSet != wantCS {
				t.Errorf("control set %d, want %d", in.Safety.ControlSet, wantCS)
			}
			// the report still reads ControlSet001
			for _, r := range in.Checks {
				if r.ID == "services" && r.Status != StatusOK {
					t.Errorf("services %s: %s %s", r.Status, r.Summary, r.Error)
				}
			}
		})
	}
}

// checkServiceActions: each planted start type is set back to its default,
// the planted descriptor back to the documented DACL, and the look-alike
// descriptors are not acted on.
func checkServiceActions(t *testing.T, prof findingsProfile, byID map[string]Result) {
	t.Helper()
	want := map[string]string{}
	if m, ok := prof.Checks["services"]["fix_start"].(map[string]any); ok {
		for s, n := range m {
			want[strings.ToLower(`services\`+s+`\start`)] = fmt.Sprint(n)
		}
	}
	sc := prof.Checks["service-config"]
	// keys() keeps only the value name: these need the whole path.
	set, _ := sc["set_descriptor"].(map[string]any)
	for k := range set {
		want[strings.ToLower(dropHive(k))] = documentedUpdateDACL
	}
	got := map[string]string{}
	left := map[string]bool{}
	kept, _ := sc["left_alone"].(map[string]any)
	for k := range kept {
		left[strings.ToLower(dropHive(k))] = true
	}
	for _, id := range []string{"services", "service-config"} {
		for _, e := range byID[id].Evidence {
			k := strings.ToLower(e.Key + `\` + e.Value)
			if i := strings.IndexByte(k, '\\'); i >= 0 {
				k = k[i+1:] // without the control set
			}
			if e.Op == "" {
				continue
			}
			if e.Op != "set" || e.OptIn != "" {
				t.Errorf("%s: %s action %q opt-in %q, want a default set", id, k, e.Op, e.OptIn)
			}
			got[k] = e.New
		}
	}
	strip := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if i := strings.Index(k, `services\`); i >= 0 {
				k = k[i:]
			}
			out[k] = v
		}
		return out
	}
	if g, w := strip(got), strip(want); !reflect.DeepEqual(g, w) {
		t.Errorf("service actions %v, want %v", g, w)
	}
	for k := range left {
		if i := strings.Index(k, `services\`); i >= 0 {
			if _, acted := strip(got)[k[i:]]; acted {
				t.Errorf("look-alike %s acted on", k)
			}
		}
	}
}
