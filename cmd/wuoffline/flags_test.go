package main

import (
	"strings"
	"testing"
)

// TestFlagsEveryCommand holds every command to the same rules: help once on
// stdout with exit 0 (also as `help CMD`), options after the targets, usage
// errors naming the option with two dashes, --yes/-y on every command that
// writes and a usage error without it when stdin is not a terminal (go
// test's stdin is not one), and a missing TARGET file is exit 4.
func TestFlagsEveryCommand(t *testing.T) {
	helps := map[string]string{"diagnose": diagnoseHelp, "fix": fixHelp, "undo": undoHelp, "reg": regHelp,
		"ls": lsHelp, "mv": mvHelp, "check": checkHelp}
	for _, c := range commands() {
		help, ok := helps[c.name]
		if !ok {
			if c.name != "version" {
				t.Errorf("command %s: no help in this test's table", c.name)
			}
			continue
		}
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {c.name, "x", "--help"}} {
			code, out, errs := runCmd(args...)
			if code != exitOK || out != help || errs != "" {
				t.Errorf("%q: exit %d, stderr %q, help printed %d times", args, code, errs, strings.Count(out, help))
			}
		}
		code, _, errs := runCmd(c.name, "--no-such-option", "x")
		if code != exitUsage || !strings.Contains(errs, "--no-such-option") || strings.Count(errs, "Usage") != 1 {
			t.Errorf("%s --no-such-option: exit %d, stderr %q", c.name, code, errs)
		}
	}
	missing := t.TempDir() + "/missing.img"
	tests := []struct {
		args []string
		code int
		err  string // in stderr
	}{
		// options after the targets
		{[]string{"diagnose", missing, "--json"}, exitError, ""},
		{[]string{"diagnose", missing, "--letter", "E:"}, exitError, ""},
		{[]string{"ls", missing, "--partition", "2"}, exitError, "does not exist"},
		{[]string{"check", missing, "--all"}, exitError, "does not exist"},
		// two dashes in usage errors, even when typed with one
		{[]string{"ls", missing, "-partition"}, exitUsage, "--partition"},
		{[]string{"ls", missing, "--partition", "two"}, exitUsage, "--partition"},
		{[]string{"fix", "-dry-run=maybe", missing}, exitUsage, "--dry-run"},
		{[]string{"ls", "a", "b", "c"}, exitUsage, "too many arguments"},
		{[]string{"mv", "a", "b"}, exitUsage, "too few arguments"},
		// "--" ends the options
		{[]string{"ls", "--", "--help"}, exitError, "--help"},
		// every command that writes wants --yes off a terminal
		{[]string{"fix", missing}, exitUsage, "add --yes"},
		{[]string{"undo", missing}, exitUsage, "add --yes"},
		{[]string{"mv", missing, "a", "b"}, exitUsage, "add --yes"},
		{[]string{"reg", "set", missing, "k", "v", "REG_DWORD", "1"}, exitUsage, "add --yes"},
		{[]string{"reg", "delete", missing, "k", "v"}, exitUsage, "add --yes"},
		{[]string{"reg", "undo", missing}, exitUsage, "add --yes"},
		// with --yes (or -y, anywhere) they get as far as the missing file: exit 4
		{[]string{"fix", missing, "--yes"}, exitError, ""},
		{[]string{"undo", "-y", missing}, exitError, ""},
		{[]string{"mv", missing, "a", "b", "-y"}, exitError, "does not exist"},
		{[]string{"reg", "set", missing, "k", "v", "REG_DWORD", "-1", "--yes"}, exitUsage, "32-bit"},
		{[]string{"reg", "set", "-y", missing, "k", "v", "REG_DWORD", "1"}, exitError, ""},
		{[]string{"reg", "undo", missing, "-y"}, exitError, ""},
		{[]string{"reg", "get", missing, "k"}, exitError, ""},
		// dry runs need no --yes
		{[]string{"fix", "-n", missing}, exitError, ""},
		{[]string{"mv", missing, "a", "b", "--dry-run"}, exitError, "does not exist"},
		// read-only commands take no --yes
		{[]string{"diagnose", "--yes", missing}, exitUsage, "--yes"},
		{[]string{"reg", "get", "--yes", missing, "k"}, exitUsage, "--yes is for"},
		// mv X X is a usage error, whatever the spelling
		{[]string{"mv", "--yes", missing, `Windows\Temp`, "windows/temp/"}, exitUsage, "same path"},
		{[]string{"help", "frobnicate"}, exitUsage, "unknown command"},
	}
	for _, tt := range tests {
		code, _, errs := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.err) {
			t.Errorf("%q: exit %d (want %d), stderr %q (want %q)", tt.args, code, tt.code, errs, tt.err)
		}
	}
}
