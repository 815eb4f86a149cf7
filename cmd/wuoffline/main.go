// Command wuoffline repairs Windows Update on a Windows installation that is
// not running: from a rescue USB (WinPE or Linux) or on disk images.
//
// This file holds only the command table, the exit codes and the top-level
// usage; each command lives in its own file.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// Exit codes, the same for every command (README "Exit codes").
const (
	exitOK      = 0 // nothing to fix / success
	exitProblem = 1 // problems found that fix would repair
	exitUsage   = 2 // usage error
	exitRefused = 3 // refused for safety; nothing written
	exitError   = 4 // any other error
)

// command is one subcommand: its one-line summary and its entry point.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"diagnose", "find every Windows installation on the targets and report what is wrong (read-only)", runDiagnose},
		{"fix", "repair what diagnose found: plan, dry run, journal, write, verify (--dry-run writes nothing)", runFix},
		{"undo", "take back the last fix on a target, byte for byte, from its journal", runUndo},
		{"reg", "read and edit offline registry hive files (export, get, set, delete, check)", runReg},
		{"ls", "list a directory on an NTFS volume without mounting it", runLs},
		{"mv", "rename or move a file or directory on an NTFS volume without mounting it", runMv},
		{"check", "check NTFS structures (indexes, names, bitmaps) of a volume", runCheck},
		{"version", "print the version, commit and build date", runVersion},
	}
}

const usageHead = `wuoffline repairs Windows Update on a Windows installation that is not running.

Usage:
  wuoffline COMMAND [OPTIONS] TARGET...

TARGET is a disk or volume image file, a block device (/dev/sdb, /dev/nvme0n1p3,
\\.\PhysicalDrive1), a Windows drive letter (D:), or a directory where the
Windows volume is mounted.

Commands:
`

const usageTail = `
Run 'wuoffline help COMMAND' (or 'wuoffline COMMAND --help') for a command's options.
Options may come before or after the TARGETs.

Exit codes:
  0  nothing to fix (or the command succeeded)
  1  problems found that 'wuoffline fix' would repair
  2  usage error
  3  refused for safety: nothing was written (the report says why and what to do)
  4  other error (unreadable target, damaged structures, I/O error)
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, usageTail)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help":
		if len(args) > 1 {
			// `wuoffline help CMD` is `wuoffline CMD --help`.
			for _, c := range commands() {
				if c.name == args[1] {
					return c.run([]string{"--help"}, stdout, stderr)
				}
			}
			fmt.Fprintf(stderr, "wuoffline help: unknown command %q\n\n", args[1])
			usage(stderr)
			return exitUsage
		}
		usage(stdout)
		return exitOK
	case "-h", "--help":
		usage(stdout)
		return exitOK
	case "--version":
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "wuoffline: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// version, commit and date are set at build time by the Makefile
// (-ldflags -X main.version=... -X main.commit=... -X main.date=...); date is
// the commit's time, so that a release build is reproducible. Builds without
// them (go build, go install) fall back to what the Go toolchain recorded.
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildVersion returns the version, commit and date of this binary.
func buildVersion() (v, c, d string) {
	v, c, d = version, commit, date
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	if v == "" {
		v = "devel"
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && c == "":
			c = s.Value
		case s.Key == "vcs.time" && d == "":
			d = s.Value
		}
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return v, c, d
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	v, c, d := buildVersion()
	fmt.Fprintf(stdout, "wuoffline %s\ncommit %s\ndate %s\n", v, c, d)
	return exitOK
}
