package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/wuoffline/wuoffline/offline"
)

// fleet runs do for every target, at most jobs at a time (jobs <= 0: the
// number of CPUs), and hands each result to emit in argument order, as soon
// as it and every target before it are done. A target's failure is in its
// result: it never stops the others.
func fleet[T any](targets []string, jobs int, do func(target string) T, emit func(i int, r T)) {
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	results := make([]T, len(targets))
	done := make([]chan struct{}, len(targets))
	for i := range done {
		done[i] = make(chan struct{})
	}
	sem := make(chan struct{}, jobs)
	go func() {
		for i, t := range targets {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; close(done[i]) }()
				results[i] = do(t)
			}()
		}
	}()
	for i := range targets {
		<-done[i]
		emit(i, results[i])
	}
}

// fleetRun is how diagnose, fix and undo treat many targets: do runs
// --jobs at a time; each result is printed in argument order as soon as it
// and those before it are done, as one JSON line (document) or as text
// (text, then a blank line between targets and a summary at the end); the
// exit code is the worst of all.
type fleetRun[T any] struct {
	command        string
	stdout, stderr io.Writer
	jobs           int
	asJSON         bool
	prog           *progressLine
	do             func(target string) T
	exit           func(T) int
	outcome        func(T) string // for the summary line
	document       func(T) any
	text           func(io.Writer, T)
}

func (f fleetRun[T]) run(targets []string) int {
	worst, failed := exitOK, false
	var sum tally
	fleet(targets, f.jobs, func(t string) T {
		r := f.do(t)
		f.prog.clear(true)
		return r
	}, func(i int, r T) {
		f.prog.clear(false)
		worst = offline.WorstExit(worst, f.exit(r))
		sum.add(f.outcome(r))
		if f.asJSON {
			failed = !jsonLine(f.stdout, f.stderr, f.command, f.document(r)) || failed
			return
		}
		if i > 0 {
			fmt.Fprintln(f.stdout)
		}
		f.text(f.stdout, r)
	})
	if s := sum.String(); s != "" && !f.asJSON {
		fmt.Fprintf(f.stdout, "\n%s\n", s)
	}
	if failed {
		return exitError
	}
	return worst
}

// jsonLine prints v as one line of JSON (JSON Lines: one document per
// target); it returns false when stdout failed.
func jsonLine(stdout, stderr io.Writer, command string, v any) bool {
	b, err := json.Marshal(v)
	if err == nil {
		_, err = stdout.Write(append(b, '\n'))
	}
	if err != nil {
		fmt.Fprintf(stderr, "wuoffline %s: %v\n", command, err)
		return false
	}
	return true
}

// header is the header of a JSON document of command, made now.
func header(command string) offline.Header {
	v, _, _ := buildVersion()
	return offline.NewHeader(command, v, time.Now())
}

// progressLine is the one line of progress on a terminal's stderr:
// "[2/5 done] disk.img: reading hives", rewritten in place and cleared
// before anything else is printed. It is a no-op when stderr is not a
// terminal (scripts get the reports alone).
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	width int
	total int
	done  int
	shown bool
}

func newProgressLine(stderr io.Writer, total int) *progressLine {
	return &progressLine{w: stderr, on: isTerminal(stderr), width: outputWidth(stderr), total: total}
}

// report is the callback offline's Progress options take.
func (p *progressLine) report(target, msg string) {
	if p == nil || !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line := []rune(fmt.Sprintf("[%d/%d done] %s: %s", p.done, p.total, target, msg))
	if len(line) > p.width-1 {
		line = line[:p.width-1]
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", string(line))
	p.shown = true
}

// clear removes the line (before a report or a question is printed); with
// finished, one more target is counted as done.
func (p *progressLine) clear(finished bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if finished {
		p.done++
	}
	if p.on && p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// tally counts outcomes for the summary line at the end of text output:
// "3 targets: 1 fixed, 1 healthy, 1 refused".
type tally struct {
	n      int
	counts map[string]int
	order  []string
}

func (t *tally) add(outcome string) {
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	if t.counts[outcome] == 0 {
		t.order = append(t.order, outcome)
	}
	t.counts[outcome]++
	t.n++
}

// String is the summary line, or "" for a single target (its own report
// ends with its outcome).
func (t *tally) String() string {
	if t.n < 2 {
		return ""
	}
	order := append([]string(nil), t.order...)
	sort.SliceStable(order, func(i, j int) bool { return t.counts[order[i]] > t.counts[order[j]] })
	parts := make([]string, len(order))
	for i, o := range order {
		parts[i] = fmt.Sprintf("%d %s", t.counts[o], o)
	}
	return fmt.Sprintf("%d targets: %s", t.n, strings.Join(parts, ", "))
}
