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

	"github.com/wuoffline/wuoffline/internal/testutil"
	"github.com/wuoffline/wuoffline/offline"
)

// fleetDisks makes the broken test disk as raw, qcow2 and VHDX files in dir
// (qemu-img convert) and returns their paths.
func fleetDisks(t *testing.T, dir string) (raw, qcow2, vhdx string) {
	t.Helper()
	qemu := testutil.RequireTool(t, "qemu-img")
	raw = filepath.Join(dir, "a.img")
	testutil.Run(t, "cp", testutil.TestImage(t, "broken-gpt.img"), raw)
	qcow2, vhdx = filepath.Join(dir, "b.qcow2"), filepath.Join(dir, "c.vhdx")
	testutil.Run(t, qemu, "convert", "-O", "qcow2", raw, qcow2)
	testutil.Run(t, qemu, "convert", "-O", "vhdx", raw, vhdx)
	return raw, qcow2, vhdx
}

// pathWith returns a PATH= entry that finds the built binary as `wuoffline`.
func pathWith(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "wuoffline")); err != nil {
		t.Fatal(err)
	}
	return "PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

// diagnoseLines checks JSON Lines output: one diagnose document a line, for
// want's targets (base names) in that order, each exit 1 (the broken disk).
func diagnoseLines(t *testing.T, out []byte, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d JSON lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, l := range lines {
		var d struct {
			SchemaVersion int    `json:"schema_version"`
			Command       string `json:"command"`
			Target        string `json:"target"`
			Exit          int    `json:"exit"`
		}
		if err := json.Unmarshal([]byte(l), &d); err != nil || d.SchemaVersion != offline.SchemaVersion || d.Command != "diagnose" || filepath.Base(d.Target) != want[i] || d.Exit != 1 {
			t.Errorf("line %d: %+v (%v), want %s with exit 1", i+1, d, err, want[i])
		}
	}
}

// TestFleetGNUParallel runs the README's GNU parallel block exactly as it is
// written, in a directory holding the broken test disk as qcow2 and VHDX.
func TestFleetGNUParallel(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	testutil.RequireTool(t, "parallel")
	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	readme, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "this exact block is run by\n`e2e/fleet_test.go`):\n\n```sh\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 || !strings.Contains(block, "parallel ") {
		t.Fatal("README: the GNU parallel block is not where this test looks for it")
	}
	dir := t.TempDir()
	fleetDisks(t, dir)
	os.Remove(filepath.Join(dir, "a.img"))
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", block)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), pathWith(t, bin))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "2 disk(s) need attention") {
		t.Fatalf("the README block: %v\n%s", err, out)
	}
	jl, err := os.ReadFile(filepath.Join(dir, "fleet.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	diagnoseLines(t, jl, "b.qcow2", "c.vhdx")
}

// TestFleetKubernetesJob checks docs/fleet/job.yaml with a YAML parser that
// is not ours (python3-yaml): an Indexed Job whose container arguments pick
// the disk by $(JOB_COMPLETION_INDEX) under the volume's mount path; then
// runs those arguments as each pod would (Kubernetes substitutes the index)
// on a directory of disk-0, disk-1, disk-2 (raw, qcow2, VHDX). No cluster.
func TestFleetKubernetesJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import yaml").CombinedOutput(); err != nil {
		testutil.Unavailable(t, "python3-yaml not installed (apt-get install python3-yaml): %v %s", err, out)
	}
	root := testutil.RepoRoot(t)
	js, err := exec.Command(py, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
		filepath.Join(root, "docs", "fleet", "job.yaml")).Output()
	if err != nil {
		t.Fatalf("docs/fleet/job.yaml does not parse: %v", err)
	}
	var job struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			CompletionMode string `json:"completionMode"`
			Completions    int    `json:"completions"`
			Template       struct {
				Spec struct {
					RestartPolicy string `json:"restartPolicy"`
					Containers    []struct {
						Name         string   `json:"name"`
						Args         []string `json:"args"`
						VolumeMounts []struct {
							MountPath string `json:"mountPath"`
						} `json:"volumeMounts"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(js, &job); err != nil {
		t.Fatal(err)
	}
	ps := job.Spec.Template.Spec
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Spec.CompletionMode != "Indexed" || job.Spec.Completions != 3 ||
		ps.RestartPolicy != "Never" || len(ps.Containers) != 1 || len(ps.Containers[0].VolumeMounts) != 1 {
		t.Fatalf("not the Indexed Job the docs describe: %s", js)
	}
	c := ps.Containers[0]
	mount := c.VolumeMounts[0].MountPath
	if !strings.Contains(strings.Join(c.Args, " "), mount+"/disk-$(JOB_COMPLETION_INDEX)") {
		t.Fatalf("args %q do not pick %s/disk-$(JOB_COMPLETION_INDEX)", c.Args, mount)
	}
	containerfile, err := os.ReadFile(filepath.Join(root, "docs", "fleet", "Containerfile"))
	if err != nil || !strings.Contains(string(containerfile), "FROM scratch") || !strings.Contains(string(containerfile), `ENTRYPOINT ["/wuoffline"]`) {
		t.Fatalf("docs/fleet/Containerfile: %v", err)
	}

	bin := binary(t, runtime.GOOS, runtime.GOARCH)
	dir := t.TempDir()
	raw, qcow2, vhdx := fleetDisks(t, dir)
	vol := t.TempDir() // the volume, as mounted at mount
	for i, p := range []string{raw, qcow2, vhdx} {
		if err := os.Symlink(p, filepath.Join(vol, fmt.Sprintf("disk-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var logs []byte
	for i := range job.Spec.Completions {
		args := make([]string, len(c.Args))
		for j, a := range c.Args {
			a = strings.ReplaceAll(a, "$(JOB_COMPLETION_INDEX)", fmt.Sprint(i))
			args[j] = strings.Replace(a, mount, vol, 1)
		}
		r := run(t, nil, bin, args...)
		if r.exit != 1 {
			t.Errorf("pod %d: exit %d, want 1\n%s", i, r.exit, r.stderr)
		}
		logs = append(logs, r.stdout...)
	}
	diagnoseLines(t, logs, "disk-0", "disk-1", "disk-2")
}
