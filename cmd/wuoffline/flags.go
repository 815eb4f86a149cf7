package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cmdFlags is the one flag parser every command uses, on the standard flag
// package: options may come before, between or after the positional
// arguments (`diagnose a.img --json`), "--" ends the options, -h/--help
// prints the command's help once to stdout, and a usage error names the bad
// option with two dashes.
type cmdFlags struct {
	*flag.FlagSet
	name, help     string
	stdout, stderr io.Writer
	// looseAfter, when > 0, makes a word that is not a known option a
	// positional argument once that many positionals were read (reg DATA
	// such as "-1").
	looseAfter int
}

// newFlags returns the parser of command name ("fix", "reg set"), whose
// --help text is help.
func newFlags(name, help string, stdout, stderr io.Writer) *cmdFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by parse, once
	fs.Usage = func() {}
	return &cmdFlags{FlagSet: fs, name: name, help: help, stdout: stdout, stderr: stderr}
}

// boolFlag defines --long and its one-letter alias -s (when s is not "").
func (c *cmdFlags) boolFlag(long, short string) *bool {
	p := c.Bool(long, false, "")
	if short != "" {
		c.BoolVar(p, short, false, "")
	}
	return p
}

// yesFlag defines --yes/-y: write without asking.
func (c *cmdFlags) yesFlag() *bool { return c.boolFlag("yes", "y") }

// timeFlag defines --time RFC3339: the time a journaled write stamps into
// the NTFS times and registry last-written times it changes. It returns
// the zero time when the option is not given (then: now at each write).
func (c *cmdFlags) timeFlag() *time.Time {
	p := new(time.Time)
	c.Var(stampTime{p}, "time", "")
	return p
}

// jobsFlag defines --jobs N: how many TARGETs a command works on at once
// (default: the CPUs). A value below 1 is a usage error naming the option.
func (c *cmdFlags) jobsFlag() *int {
	p := new(int)
	*p = runtime.NumCPU()
	c.Var(jobsValue{p}, "jobs", "")
	return p
}

// jobsValue is the value of --jobs.
type jobsValue struct{ n *int }

func (j jobsValue) String() string {
	if j.n == nil {
		return ""
	}
	return strconv.Itoa(*j.n)
}

func (j jobsValue) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return errors.New("want a whole number of TARGETs at once, at least 1")
	}
	*j.n = n
	return nil
}

// stampTime is the value of --time.
type stampTime struct{ t *time.Time }

func (s stampTime) String() string {
	if s.t == nil || s.t.IsZero() {
		return ""
	}
	return s.t.Format(time.RFC3339Nano)
}

func (s stampTime) Set(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("not an RFC 3339 time such as 2026-12-04T19:00:00Z")
	}
	// NTFS and registry times (FILETIME) count 100 ns ticks from
	// 1601-01-01 UTC: an earlier time cannot be stored, and the epoch
	// itself reads as "no time".
	if !t.After(time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)) {
		return fmt.Errorf("before 1601-01-01T00:00:00Z, where NTFS and registry times start")
	}
	*s.t = t
	return nil
}

// flagName matches an option as the flag package names it in its errors
// ("-journal"), to print it as it is spelled in the help ("--journal").
var flagName = regexp.MustCompile(`(^|[\s:])-([A-Za-z][A-Za-z0-9-]+)`)

// parse parses args and returns the positional arguments. When parsing ends
// the command (help asked, usage error, fewer than min or more than max
// positionals; max < 0 for no limit) it has printed what to print and
// returns done with the exit code.
func (c *cmdFlags) parse(args []string, min, max int) (pos []string, code int, done bool) {
	for len(args) > 0 {
		a := args[0]
		if a == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" || (c.looseAfter > 0 && len(pos) >= c.looseAfter && !c.known(a)) {
			pos = append(pos, a)
			args = args[1:]
			continue
		}
		if err := c.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.stdout, c.help)
				return nil, exitOK, true
			}
			msg := strings.Replace(err.Error(), "flag provided but not defined", "unknown option", 1)
			msg = strings.Replace(msg, "for flag ", "for ", 1)
			return nil, c.usageError("%s", flagName.ReplaceAllString(msg, "$1--$2")), true
		}
		rest := c.Args()
		if used := args[:len(args)-len(rest)]; len(used) > 0 && used[len(used)-1] == "--" {
			// flag.Parse consumed a "--": the rest is positional.
			pos = append(pos, rest...)
			break
		}
		args = rest
	}
	switch {
	case len(pos) < min && len(pos) == 0:
		return nil, c.usageError("no TARGET given"), true
	case len(pos) < min:
		return nil, c.usageError("too few arguments (%d, want %d)", len(pos), min), true
	case max >= 0 && len(pos) > max:
		return nil, c.usageError("too many arguments (%d, at most %d): %q", len(pos), max, pos[max:]), true
	}
	return pos, 0, false
}

// known reports whether word names an option of this command.
func (c *cmdFlags) known(word string) bool {
	name := strings.TrimLeft(word, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	return name == "h" || name == "help" || c.Lookup(name) != nil
}

// usageError prints "wuoffline CMD: MESSAGE", the usage and where the help is, and
// returns exitUsage.
func (c *cmdFlags) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "wuoffline %s: %s\n", c.name, fmt.Sprintf(format, args...))
	// The help's first paragraph: the usage line(s).
	first, _, _ := strings.Cut(c.help, "\n\n")
	fmt.Fprintf(c.stderr, "%s\n", first)
	fmt.Fprintf(c.stderr, "Run 'wuoffline %s --help' for the options.\n", c.name)
	return exitUsage
}

// confirmer decides, before anything is opened, how a command that writes
// gets its permission: --yes, or a question on the terminal. Without --yes
// and with stdin not a terminal it is a usage error (done is true).
func (c *cmdFlags) confirmer(yes bool) (ask func(question string) bool, code int, done bool) {
	if yes {
		return func(string) bool { return true }, 0, false
	}
	if !isInteractive(os.Stdin) {
		return nil, c.usageError("stdin is not a terminal: add --yes to write without being asked"), true
	}
	in := bufio.NewReader(os.Stdin)
	return func(question string) bool {
		fmt.Fprintf(c.stderr, "%s [y/N] ", question)
		line, _ := in.ReadString('\n')
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes"
	}, 0, false
}
