// Package testutil holds the helpers shared by the project's tests: where
// the third-party fixtures and built test images are, which independent
// tools must be present, and decompression into a test's temporary dir.
//
// Rules (README "Testing"): outside CI a missing fixture or tool skips the
// test with a loud message; with CI=true it fails the test, because CI must
// run every independent check.
package testutil

import (
	"archive/zip"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// InCI reports whether the tests run in CI (CI=true), where every fixture
// and every independent tool is mandatory.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips t outside CI and fails it in CI. Use it for anything the
// test cannot run without (a tool, a fixture, root).
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("REQUIRED IN CI: %s", msg)
	}
	t.Skipf("SKIPPED (not CI): %s", msg)
}

// RepoRoot returns the project's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot locate source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// SharedFixture returns the path of rel under ../shared/fixtures, skipping
// (or failing in CI) when it is absent.
func SharedFixture(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "..", "shared", "fixtures", filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		Unavailable(t, "fixture %s not found (../shared/fixtures is beside the project in CI): %v", rel, err)
	}
	return p
}

// RequireTool returns the path of an external program, skipping (or failing
// in CI) when it is not installed. .ci/run installs all of them.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "tool %q not installed (apt-get install it; .ci/run lists the packages)", name)
	}
	return p
}

// RequireRoot skips (or fails in CI) unless running as root, which FUSE
// mounts and loop devices need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (FUSE mount)")
	}
}

// Run runs a command and returns its standard output, failing the test with
// its standard error on a non-zero exit.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// Decompress opens src, decompresses it by its extension (.gz, .bz2, .xz;
// for .zip, the single member named member, or the only regular member when
// member is ""), writes the result into t's temp dir and returns that path.
// A file with none of those extensions is copied as is.
func Decompress(t testing.TB, src, member string) string {
	t.Helper()
	base := filepath.Base(src)
	var r io.Reader
	f, err := os.Open(src)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	defer f.Close()
	switch {
	case strings.HasSuffix(base, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("testutil: %s: %v", src, err)
		}
		r, base = zr, strings.TrimSuffix(base, ".gz")
	case strings.HasSuffix(base, ".bz2"):
		r, base = bzip2.NewReader(f), strings.TrimSuffix(base, ".bz2")
	case strings.HasSuffix(base, ".xz"):
		xr, err := xz.NewReader(f)
		if err != nil {
			t.Fatalf("testutil: %s: %v", src, err)
		}
		r, base = xr, strings.TrimSuffix(base, ".xz")
	case strings.HasSuffix(base, ".zip"):
		zr, err := zip.OpenReader(src)
		if err != nil {
			t.Fatalf("testutil: %s: %v", src, err)
		}
		defer zr.Close()
		var pick *zip.File
		for _, zf := range zr.File {
			if zf.FileInfo().IsDir() {
				continue
			}
			if member == "" || zf.Name == member || filepath.Base(zf.Name) == member {
				if pick != nil && member == "" {
					t.Fatalf("testutil: %s has several members; name one", src)
				}
				pick = zf
			}
		}
		if pick == nil {
			t.Fatalf("testutil: %s: member %q not found", src, member)
		}
		rc, err := pick.Open()
		if err != nil {
			t.Fatalf("testutil: %s: %v", src, err)
		}
		defer rc.Close()
		r, base = rc, filepath.Base(pick.Name)
	default:
		r = f
	}
	dst := filepath.Join(t.TempDir(), base)
	out, err := os.Create(dst)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		t.Fatalf("testutil: decompressing %s: %v", src, err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return dst
}

// TestImage returns a fresh, writable copy of a built test image from
// testimages/data (NAME.gz there), decompressed into t's temp dir.
func TestImage(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join(RepoRoot(t), "testimages", "data", name+".gz")
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("testutil: test image %s missing (run make testimages): %v", name, err)
	}
	return Decompress(t, src, "")
}

// SHA256File returns the hex SHA-256 of a file's bytes: the usual proof
// that a read-only operation, a refusal or an undo left an image exactly
// as it was.
func SHA256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("testutil: hashing %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
