// Package e2e tests the built wuoffline binaries from the outside, as a user
// or a script runs them: the JSON reports against the shipped JSON Schemas
// (checked by an independent validator), and the Windows build under Wine on
// a drive letter mapped to a loop device. It has no non-test code.
package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// binaries builds each GOOS/GOARCH once per test process.
var binaries struct {
	sync.Mutex
	dir   string
	built map[string]string
}

// TestMain removes the built binaries at the end.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// binary returns the path of wuoffline built for goos/goarch (static, as
// the Makefile builds it), building it on first use.
func binary(t *testing.T, goos, goarch string) string {
	t.Helper()
	binaries.Lock()
	defer binaries.Unlock()
	key := goos + "-" + goarch
	if p, ok := binaries.built[key]; ok {
		return p
	}
	if binaries.dir == "" {
		d, err := os.MkdirTemp("", "wuoffline-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir, binaries.built = d, map[string]string{}
	}
	out := filepath.Join(binaries.dir, "wuoffline-"+key)
	if goos == "windows" {
		out += ".exe"
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", out, "./cmd/wuoffline")
	cmd.Dir = testutil.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", key, err, b)
	}
	binaries.built[key] = out
	return out
}

// result is one run of a binary.
type result struct {
	stdout, stderr []byte
	exit           int
}

// run runs name with args (env added to the environment) and returns its
// output and exit code; a failure to start fails the test.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
	default:
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return result{so.Bytes(), se.Bytes(), cmd.ProcessState.ExitCode()}
}
