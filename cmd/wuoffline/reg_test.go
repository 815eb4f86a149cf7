package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// regCopy copies a shared fixture hive (decompressed) into a fresh
// directory under name.
func regCopy(t *testing.T, rel, name string) string {
	t.Helper()
	src := testutil.Decompress(t, testutil.SharedFixture(t, rel), "")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func journals(t *testing.T, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.journal"))
	return m
}

func TestRegUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"reg"}, exitUsage, "Usage"},
		{[]string{"reg", "get"}, exitUsage, "Usage"},
		{[]string{"reg", "get", "h"}, exitUsage, "takes 2 to 3 arguments"},
		{[]string{"reg", "frob", "x"}, exitUsage, "unknown subcommand"},
		{[]string{"reg", "set", "h", "k", "v", "REG_FOO", "1"}, exitUsage, "unknown type"},
		{[]string{"reg", "set", "h", "k", "v", "REG_DWORD", "0x100000000"}, exitUsage, "32-bit"},
		{[]string{"reg", "set", "h", "k", "v", "REG_BINARY", "0g"}, exitUsage, "hex"},
		{[]string{"reg", "export", "--dry-run", "h"}, exitUsage, "--dry-run is for"},
		{[]string{"reg", "delete", "h", ""}, exitUsage, "root"},
		{[]string{"reg", "--bogus", "get", "h", "k"}, exitUsage, "unknown option"},
	} {
		code, _, errs := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.err) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, errs, tt.code, tt.err)
		}
	}
	if code, out, _ := runCmd("reg", "--help"); code != exitOK || !strings.Contains(out, "reg undo") {
		t.Errorf("--help: %d %q", code, out)
	}
}

// TestRegSetGetDeleteUndo drives the command on a real SYSTEM hive and
// checks each result with hivex (hivexget, hivexregedit) as well as with
// our reader; undo must give back the original file byte for byte.
func TestRegSetGetDeleteUndo(t *testing.T) {
	hivexget := testutil.RequireTool(t, "hivexget")
	path := regCopy(t, "hives/regipy/SYSTEM.xz", "SYSTEM")
	dir := filepath.Dir(path)
	orig, _ := os.ReadFile(path)

	// A dry run writes nothing and leaves no journal.
	code, out, errs := runCmd("reg", "set", "--dry-run", path, `WuoTest\Ünïcødé\Кириллица`, "Wert", "REG_SZ", "ſtraße ı")
	if code != exitOK || !strings.Contains(out, `create key [\WuoTest\Ünïcødé\Кириллица]`) || !strings.Contains(out, "dry run:") || !strings.Contains(out, "0x00000000 +512") {
		t.Fatalf("dry run: %d\n%s\n%s", code, out, errs)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) || len(journals(t, dir)) != 0 {
		t.Fatal("dry run changed the hive or left a journal")
	}

	steps := []struct {
		args []string
		out  string
	}{
		{[]string{"set", path, `WuoTest\Ünïcødé\Кириллица`, "Wert", "REG_SZ", "ſtraße ı"}, "undo with: wuoffline reg undo"},
		{[]string{"set", path, `wuotest\ÜNÏCØDÉ\кириллица`, "n", "REG_DWORD", "0x2a"}, "journal:"},
		{[]string{"set", path, `WuoTest`, "", "REG_MULTI_SZ", `a\0bc`}, "journal:"},
		{[]string{"set", path, `WuoTest`, "q", "REG_QWORD", "18446744073709551615"}, "journal:"},
		{[]string{"set", path, `WuoTest`, "bin", "REG_BINARY", "01,02,ff"}, "journal:"},
		{[]string{"set", path, `Select`, "Current", "REG_DWORD", "2"}, "old: REG_DWORD 0x00000001 (1)"},
		{[]string{"delete", path, `ControlSet002\Services\Tcpip`}, "delete key [\\ControlSet002\\services\\Tcpip] with its subtree"},
		{[]string{"delete", path, `WuoTest`, "bin"}, "delete value"},
	}
	for _, s := range steps {
		code, out, errs := runCmd(append([]string{"reg", "--yes"}, s.args...)...)
		if code != exitOK || !strings.Contains(out, s.out) {
			t.Fatalf("%q: %d\n%s\n%s", s.args, code, out, errs)
		}
	}
	// Our reader, hivex and our get agree.
	code, out, _ = runCmd("reg", "get", path, `WUOTEST\ünïcødé\Кириллица`, "wert")
	if code != exitOK || out != "REG_SZ\t\"ſtraße ı\"\n" {
		t.Fatalf("get: %d %q", code, out)
	}
	if got := string(testutil.Run(t, hivexget, path, `\WuoTest\Ünïcødé\Кириллица`, "n")); strings.TrimSpace(got) != "42" {
		t.Fatalf("hivexget n: %q", got)
	}
	if got := string(testutil.Run(t, hivexget, path, `\Select`, "Current")); strings.TrimSpace(got) != "2" {
		t.Fatalf("hivexget Current: %q", got)
	}
	if err := exec.Command(hivexget, path, `\ControlSet002\Services\Tcpip`).Run(); err == nil {
		t.Fatal("hivexget still finds the deleted key")
	}
	code, out, _ = runCmd("reg", "export", path, "WuoTest")
	for _, want := range []string{`[\WuoTest]`, `@=hex(7):61,00,00,00,62,00,63,00,00,00,00,00`, `"q"=hex(b):ff,ff,ff,ff,ff,ff,ff,ff`,
		`[\WuoTest\Ünïcødé\Кириллица]`, `"Wert"="ſtraße ı"`, `"n"=dword:0000002a`} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ = runCmd("reg", "check", path); code != exitOK || !strings.Contains(out, "no errors") {
		t.Fatalf("check: %d\n%s", code, out)
	}
	// Undo everything, newest first: the original file comes back.
	if n := len(journals(t, dir)); n != len(steps) {
		t.Fatalf("%d journals, want %d", n, len(steps))
	}
	for range steps {
		if code, out, errs := runCmd("reg", "undo", "-y", path); code != exitOK {
			t.Fatalf("undo: %d\n%s\n%s", code, out, errs)
		}
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("undo did not restore the original bytes")
	}
	if code, _, errs := runCmd("reg", "undo", "-y", path); code != exitError || !strings.Contains(errs, "no change to undo") {
		t.Fatalf("undo with nothing left: %d %q", code, errs)
	}
}

// TestRegGrowUndo: a value too big for the free space makes the file grow;
// undo cuts it back to its size.
func TestRegGrowUndo(t *testing.T) {
	path := regCopy(t, "hives/hivex/minimal", "NTUSER.DAT")
	orig, _ := os.ReadFile(path)
	data := strings.Repeat("c3", 50000)
	code, out, errs := runCmd("reg", "set", "--yes", path, `Software\Big`, "blob", "REG_BINARY", data)
	if code != exitOK || !strings.Contains(out, "the file grows from 8192 to") {
		t.Fatalf("set: %d\n%s\n%s", code, out, errs)
	}
	h := openHive(t, path)
	k, err := h.OpenKey(`software\big`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := k.Value("blob")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := v.Data(); err != nil || len(d) != 50000 || d[49999] != 0xc3 {
		t.Fatalf("blob: %d bytes, %v", len(d), err)
	}
	if r := h.Check(); !r.OK() {
		t.Fatalf("checker:\n%s", r)
	}
	if tool := testutil.RequireTool(t, "hivexregedit"); tool != "" {
		testutil.Run(t, tool, "--export", path, `\`)
	}
	if code, out, errs := runCmd("reg", "undo", "-y", path); code != exitOK || !strings.Contains(out, "cut back") {
		t.Fatalf("undo: %d\n%s\n%s", code, out, errs)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Fatal("undo did not restore the original file")
	}
}

func openHive(t *testing.T, path string) *hive.Hive {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hive.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRegDirtyHive: the logs beside a dirty hive are found in any case;
// reading shows the recovered state; a set writes it and leaves the hive
// clean.
func TestRegDirtyHive(t *testing.T) {
	dir := t.TempDir()
	for src, dst := range map[string]string{"NewDirtyHive": "SOFTWARE", "NewDirtyHive.LOG1": "software.log1", "NewDirtyHive.LOG2": "Software.Log2"} {
		b, err := os.ReadFile(testutil.SharedFixture(t, "hives/yarp/NewDirtyHive1/"+src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "SOFTWARE")
	code, want, errs := runCmd("reg", "export", path)
	if code != exitOK || !strings.Contains(errs, "recovered from its logs") {
		t.Fatalf("export: %d %q", code, errs)
	}
	code, winOut, _ := runCmd("reg", "export", testutil.SharedFixture(t, "hives/yarp/NewDirtyHive1/RecoveredHive_Windows10"))
	if code != exitOK || winOut != want {
		t.Fatal("the recovered export differs from the hive Windows recovered")
	}
	code, out, errs := runCmd("reg", "set", "--yes", path, "WuoTest", "x", "REG_DWORD", "7")
	if code != exitOK || !strings.Contains(out, "write the state recovered") {
		t.Fatalf("set: %d\n%s\n%s", code, out, errs)
	}
	h := openHive(t, path) // the file alone, no logs
	if h.Dirty() {
		t.Fatal("hive still dirty")
	}
	if r := h.Check(); !r.OK() {
		t.Fatalf("checker:\n%s", r)
	}
	code, after, errs := runCmd("reg", "export", path)
	if code != exitOK || strings.Contains(errs, "recovered") {
		t.Fatalf("export after: %d %q", code, errs)
	}
	if !strings.Contains(after, "[\\WuoTest]\n\"x\"=dword:00000007") || strings.Replace(after, "[\\WuoTest]\n\"x\"=dword:00000007\n\n", "", 1) != want {
		t.Fatalf("after the set the hive is not the recovered state plus the new key:\n%s", after)
	}
	testutil.Run(t, testutil.RequireTool(t, "hivexregedit"), "--export", path, `\`)
}

// TestRegRefuses: a hive the checker finds damaged is not written.
func TestRegRefuses(t *testing.T) {
	path := regCopy(t, "hives/yarp/WrongOrderHive", "WrongOrderHive")
	orig, _ := os.ReadFile(path)
	code, _, errs := runCmd("reg", "set", "--yes", path, "k", "v", "REG_DWORD", "1")
	if code != exitRefused || !strings.Contains(errs, "refusing to write") {
		t.Fatalf("set on a damaged hive: %d %q", code, errs)
	}
	if code, _, _ := runCmd("reg", "check", path); code != exitProblem {
		t.Fatalf("check on a damaged hive: %d", code)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) || len(journals(t, filepath.Dir(path))) != 0 {
		t.Fatal("a refused edit changed something")
	}
}
