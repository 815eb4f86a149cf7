package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/offline"
)

// validator checks JSON documents against a JSON Schema 2020-12 file with
// python3-jsonschema, which shares no code with wuoffline. It prints one line
// per violation and exits 1 when there is any. date-time values are also
// held to a pattern in the schemas, since the format checker needs an
// optional module.
const validator = `
import json, sys
from jsonschema import Draft202012Validator, FormatChecker
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema, format_checker=FormatChecker())
bad = 0
for f in sys.argv[2:]:
    for e in sorted(v.iter_errors(json.load(open(f))), key=lambda e: list(e.absolute_path)):
        bad += 1
        print("%s: %s: %s" % (f, e.json_path, e.message[:300]))
sys.exit(1 if bad else 0)
`

// needValidator returns the python with jsonschema, skipping (or failing in
// CI) without it.
func needValidator(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		testutil.Unavailable(t, "%s not found (apt-get install python3-jsonschema)", py)
	}
	if out, err := exec.Command(py, "-c", "import jsonschema").CombinedOutput(); err != nil {
		testutil.Unavailable(t, "python3-jsonschema not installed (apt-get install python3-jsonschema): %v %s", err, out)
	}
	return py
}

// validate returns the validator's complaints about docs (nil when they all
// conform to the schema docs/NAME.schema.json).
func validate(t *testing.T, py, name string, docs []string) []string {
	t.Helper()
	schema := filepath.Join(testutil.RepoRoot(t), "docs", name+".schema.json")
	out, err := exec.Command(py, append([]string{"-c", validator, schema}, docs...)...).CombinedOutput()
	if err == nil {
		return nil
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 0 || lines[0] == "" {
		lines = []string{err.Error()}
	}
	return lines
}

// jsonRun runs the Linux build with args, checks the exit code and that
// stdout is JSON Lines: one JSON document a line, one per target, in the
// order of the targets (the last len(targets) arguments), each with the
// header every document carries; it saves document i in dir as
// name-i.json and returns their paths.
func jsonRun(t *testing.T, bin, dir, name string, wantExit int, args []string, targets ...string) []string {
	t.Helper()
	args = append(append([]string{}, args...), targets...)
	r := run(t, nil, bin, args...)
	if r.exit != wantExit {
		t.Fatalf("wuoffline %s: exit %d, want %d\n%s%s", strings.Join(args, " "), r.exit, wantExit, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(string(r.stdout), "\n"), "\n")
	if len(lines) != len(targets) {
		t.Fatalf("wuoffline %s: %d lines of output for %d targets, want one JSON document a line:\n%s", strings.Join(args, " "), len(lines), len(targets), r.stdout)
	}
	var paths []string
	for i, line := range lines {
		var v struct {
			SchemaVersion int    `json:"schema_version"`
			Command       string `json:"command"`
			ToolVersion   string `json:"tool_version"`
			Timestamp     string `json:"timestamp"`
			Target        string `json:"target"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("wuoffline %s: line %d is not a JSON document: %v\n%s", strings.Join(args, " "), i+1, err, line)
		}
		if ts, err := time.Parse(time.RFC3339, v.Timestamp); err != nil || ts.Location() != time.UTC || v.SchemaVersion != offline.SchemaVersion || v.Command != args[0] || v.ToolVersion == "" || v.Target != targets[i] {
			t.Errorf("wuoffline %s: document %d: schema %d, command %q, tool_version %q, timestamp %q (%v), target %q (want %q)",
				strings.Join(args, " "), i+1, v.SchemaVersion, v.Command, v.ToolVersion, v.Timestamp, err, v.Target, targets[i])
		}
		p := filepath.Join(dir, fmt.Sprintf("%s-%d.json", name, i))
		if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestJSONSchemas runs the built binary's diagnose, fix and undo with --json
// on every kind of test image (broken, healthy, refused, a directory, a
// missing target, several at once) and validates every document against
// docs/diagnose.schema.json, docs/fix.schema.json and docs/undo.schema.json
// with an independent validator; then checks that the validator rejects
// documents that break the schema, so that a pass means something.
func TestJSONSchemas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it on every test image")
	}
	py := needValidator(t)
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	work := t.TempDir()
	out := t.TempDir()
	imgs := map[string]string{}
	for _, n := range []string{"broken-gpt", "broken-mbr", "broken-4kn", "broken-volume", "healthy-gpt",
		"refuse-bitlocker", "refuse-dirty", "refuse-faststartup", "refuse-hibernated"} {
		imgs[n] = testutil.TestImage(t, n+".img")
	}
	tree := filepath.Join(work, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "tar", "-xzf", filepath.Join(testutil.RepoRoot(t), "testimages", "data", "broken-tree.tar.gz"), "-C", tree)
	missing := filepath.Join(work, "missing.img")
	// A container wuoffline does not read: error with advice.
	vmdk := filepath.Join(work, "disk.vmdk")
	testutil.Run(t, testutil.RequireTool(t, "qemu-img"), "create", "-q", "-f", "vmdk", vmdk, "16M")
	// A fix whose journal was cut in half: undo reports the damage.
	damaged, djournals := testutil.TestImage(t, "broken-gpt.img"), filepath.Join(work, "journals")
	if err := os.Mkdir(djournals, 0o755); err != nil {
		t.Fatal(err)
	}
	jsonRun(t, bin, out, "fix-to-damage", 0, []string{"fix", "--json", "--yes", "--journal", djournals}, damaged)
	js, _ := filepath.Glob(filepath.Join(djournals, "*.journal"))
	if len(js) != 1 {
		t.Fatalf("journals in %s: %v", djournals, js)
	}
	if st, err := os.Stat(js[0]); err != nil || os.Truncate(js[0], st.Size()/2) != nil {
		t.Fatalf("cutting the journal: %v", err)
	}

	var diag, fix, undo []string
	for n, want := range map[string]int{"broken-gpt": 1, "broken-mbr": 1, "broken-4kn": 1, "broken-volume": 1, "healthy-gpt": 0,
		"refuse-bitlocker": 3, "refuse-dirty": 3, "refuse-faststartup": 3, "refuse-hibernated": 3} {
		diag = append(diag, jsonRun(t, bin, out, "diagnose-"+n, want, []string{"diagnose", "--json"}, imgs[n])...)
	}
	jsonl := []string{"diagnose", "--json"}
	for _, docs := range [][]string{
		jsonRun(t, bin, out, "diagnose-tree", 1, jsonl, tree),
		jsonRun(t, bin, out, "diagnose-missing", 4, jsonl, missing),
		jsonRun(t, bin, out, "diagnose-vmdk", 4, jsonl, vmdk),
		// Several targets: one line each, in argument order, the worst exit.
		jsonRun(t, bin, out, "diagnose-several", 4, []string{"diagnose", "--jobs", "2", "--json"}, imgs["broken-gpt"], imgs["healthy-gpt"], missing),
	} {
		diag = append(diag, docs...)
	}

	for _, docs := range [][]string{
		jsonRun(t, bin, out, "fix-dry-run", 1, []string{"fix", "--json", "--dry-run"}, imgs["broken-gpt"]),
		jsonRun(t, bin, out, "fix-healthy", 0, []string{"fix", "--json", "--yes"}, imgs["healthy-gpt"]),
		jsonRun(t, bin, out, "fix-refused", 3, []string{"fix", "--json", "--yes"}, imgs["refuse-hibernated"]),
		jsonRun(t, bin, out, "fix-missing", 4, []string{"fix", "--json", "--yes"}, missing),
		jsonRun(t, bin, out, "fix-vmdk", 4, []string{"fix", "--json", "--yes"}, vmdk),
		jsonRun(t, bin, out, "fix-gpt", 0, []string{"fix", "--json", "--yes"}, imgs["broken-gpt"]),
		jsonRun(t, bin, out, "fix-tree", 0, []string{"fix", "--json", "--yes"}, tree),
	} {
		fix = append(fix, docs...)
	}
	for _, docs := range [][]string{
		jsonRun(t, bin, out, "undo-gpt", 0, []string{"undo", "--yes", "--json"}, imgs["broken-gpt"]),
		jsonRun(t, bin, out, "undo-again", 0, []string{"undo", "--yes", "--json"}, imgs["broken-gpt"]),
		jsonRun(t, bin, out, "undo-tree", 0, []string{"undo", "--yes", "--json"}, tree),
		jsonRun(t, bin, out, "undo-missing", 4, []string{"undo", "--yes", "--json"}, missing),
	} {
		undo = append(undo, docs...)
	}

	// The cases the schemas must cover are there: a damaged journal's
	// damage, a target's advice.
	undoDamaged := jsonRun(t, bin, out, "undo-damaged", 4, []string{"undo", "--yes", "--json", "--journal", djournals}, damaged)
	undo = append(undo, undoDamaged...)
	var ud struct {
		State    string `json:"state"`
		Journals []struct {
			Damage *struct {
				Journal string `json:"journal"`
			} `json:"damage"`
		} `json:"journals"`
	}
	if b, err := os.ReadFile(undoDamaged[0]); err != nil || json.Unmarshal(b, &ud) != nil || ud.State != "failed" || len(ud.Journals) != 1 || ud.Journals[0].Damage == nil || ud.Journals[0].Damage.Journal != js[0] {
		t.Errorf("undo of a cut journal: %+v, want state failed and the damage of %s", ud, js[0])
	}
	for _, p := range []string{filepath.Join(out, "diagnose-vmdk-0.json"), filepath.Join(out, "fix-vmdk-0.json")} {
		if b, _ := os.ReadFile(p); !strings.Contains(string(b), `"advice":"VMDK is not read`) {
			t.Errorf("%s: no advice for a VMDK: %s", p, b)
		}
	}

	for name, docs := range map[string][]string{"diagnose": diag, "fix": fix, "undo": undo} {
		if errs := validate(t, py, name, docs); errs != nil {
			t.Errorf("%s --json does not conform to docs/%s.schema.json:\n%s", name, name, strings.Join(errs, "\n"))
		}
		// Each document must fail when it carries an unknown field, a wrong
		// type or an unknown enum value: the validator really validates.
		for _, tamper := range []func(map[string]any){
			func(d map[string]any) { d["surprise"] = true },
			func(d map[string]any) { d["schema_version"] = "1" },
			func(d map[string]any) { d["exit"] = 2 },
			func(d map[string]any) { d["timestamp"] = "yesterday" },
			func(d map[string]any) { delete(d, "tool_version") },
			func(d map[string]any) { delete(d, "refusals") },
		} {
			b, _ := os.ReadFile(docs[0])
			var d map[string]any
			json.Unmarshal(b, &d)
			tamper(d)
			b, _ = json.Marshal(d)
			bad := filepath.Join(out, "tampered.json")
			os.WriteFile(bad, b, 0o644)
			if validate(t, py, name, []string{bad}) == nil {
				t.Errorf("docs/%s.schema.json accepts a tampered document: %s", name, b[:min(len(b), 200)])
			}
		}
	}
}

// TestJSONLinesContainers: `wuoffline diagnose --json a.img b.qcow2 c.vhdx`
// (b and c made from the broken test disk by qemu-img convert) prints three
// JSON lines, in argument order, each valid and naming its container.
func TestJSONLinesContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	py := needValidator(t)
	qemu := testutil.RequireTool(t, "qemu-img")
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	dir := t.TempDir()
	a := filepath.Join(dir, "a.img")
	testutil.Run(t, "cp", testutil.TestImage(t, "broken-gpt.img"), a)
	b, c := filepath.Join(dir, "b.qcow2"), filepath.Join(dir, "c.vhdx")
	testutil.Run(t, qemu, "convert", "-O", "qcow2", a, b)
	testutil.Run(t, qemu, "convert", "-O", "vhdx", a, c)
	docs := jsonRun(t, bin, dir, "fleet", 1, []string{"diagnose", "--json"}, a, b, c)
	for i, want := range []string{"raw", "qcow2", "vhdx"} {
		body, _ := os.ReadFile(docs[i])
		var d struct {
			Format string `json:"format"`
			Exit   int    `json:"exit"`
		}
		if err := json.Unmarshal(body, &d); err != nil || d.Format != want || d.Exit != 1 {
			t.Errorf("line %d: format %q exit %d (%v), want %s and 1", i+1, d.Format, d.Exit, err, want)
		}
	}
	if errs := validate(t, py, "diagnose", docs); errs != nil {
		t.Errorf("JSON Lines do not conform to docs/diagnose.schema.json:\n%s", strings.Join(errs, "\n"))
	}
}

// TestSchemasAgree holds the three shipped schemas to one contract without
// running anything: each names the SchemaVersion the program writes; every
// field says what it means (a description, or a $ref to a definition that
// has one); a definition shared by name ("refusal", "range", "journal",
// ...) and a header field are the same in every file, so a thing has one
// name and one shape in diagnose, fix and undo.
func TestSchemasAgree(t *testing.T) {
	schemas := map[string]map[string]any{}
	for _, name := range []string{"diagnose", "fix", "undo"} {
		b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", name+".schema.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("docs/%s.schema.json: %v", name, err)
		}
		schemas[name] = s
		props, _ := s["properties"].(map[string]any)
		if v, _ := props["schema_version"].(map[string]any); v == nil || v["const"] != float64(offline.SchemaVersion) {
			t.Errorf("docs/%s.schema.json: schema_version is not const %d", name, offline.SchemaVersion)
		}
		for _, p := range undescribed(s, "") {
			t.Errorf("docs/%s.schema.json: %s has no description", name, p)
		}
	}
	seen := map[string]string{} // "$defs/refusal" -> the first file's JSON
	first := map[string]string{}
	for _, name := range []string{"diagnose", "fix", "undo"} {
		s := schemas[name]
		shared := map[string]any{}
		for k, v := range s["$defs"].(map[string]any) {
			shared["$defs/"+k] = v
		}
		props := s["properties"].(map[string]any)
		for _, k := range []string{"schema_version", "tool", "tool_version", "timestamp", "target", "kind", "format", "table", "error", "advice", "io", "refusals"} {
			if v, ok := props[k]; ok {
				shared["properties/"+k] = v
			}
		}
		for k, v := range shared {
			b, _ := json.Marshal(v) // map keys are sorted: equal values marshal equal
			if prev, ok := seen[k]; ok && prev != string(b) {
				t.Errorf("%s differs between docs/%s.schema.json and docs/%s.schema.json:\n%s\n%s", k, first[k], name, prev, b)
			} else if !ok {
				seen[k], first[k] = string(b), name
			}
		}
	}
	for _, k := range []string{"$defs/refusal", "$defs/range", "$defs/journal", "$defs/version", "$defs/io", "properties/tool_version", "properties/refusals"} {
		if _, ok := seen[k]; !ok {
			t.Errorf("no schema has %s", k)
		}
	}
}

// undescribed lists the properties below schema node n (at path) that have
// neither a description nor a $ref.
func undescribed(n any, path string) []string {
	var out []string
	switch v := n.(type) {
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok {
			for k, p := range props {
				pm, _ := p.(map[string]any)
				if pm["description"] == nil && pm["$ref"] == nil {
					out = append(out, path+"/"+k)
				}
				out = append(out, undescribed(p, path+"/"+k)...)
			}
		}
		if it, ok := v["items"]; ok {
			out = append(out, undescribed(it, path+"[]")...)
		}
		if defs, ok := v["$defs"].(map[string]any); ok {
			for k, d := range defs {
				out = append(out, undescribed(d, "#/$defs/"+k)...)
			}
		}
	}
	return out
}
