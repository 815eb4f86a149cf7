package session

import (
	"errors"
	"fmt"

	"github.com/wuoffline/wuoffline/journal"
	"github.com/wuoffline/wuoffline/ntfs"
)

// Interrupted is a journaled change that was interrupted on a volume of the
// target: the volume may be half-changed.
type Interrupted struct {
	Volume  int
	Journal string
	Advice  string // how to roll it back (undo) or finish it (fix)
}

// Journals returns the journals of volume v, newest first ("" journal
// directory: none).
func (s *Session) Journals(v *Volume) ([]*journal.Info, error) {
	if s.jdirErr != nil {
		if errors.Is(s.jdirErr, journal.ErrNoJournalDir) {
			return nil, nil
		}
		return nil, s.jdirErr
	}
	if v.ID == (journal.VolumeID{}) {
		return nil, nil
	}
	return journal.Find(s.jdir, v.ID)
}

// Interrupted finds the interrupted changes on every NTFS volume of the
// target, in the journal directory the session was opened with (so
// --journal DIR is honoured): the one place every command looks.
func (s *Session) Interrupted() ([]Interrupted, error) {
	var out []Interrupted
	for _, v := range s.Volumes() {
		infos, err := s.Journals(v)
		if err != nil {
			return out, err
		}
		for _, info := range infos {
			if info.Interrupted() {
				out = append(out, Interrupted{Volume: v.Index, Journal: info.Path, Advice: s.advice(info)})
			}
		}
	}
	return out, nil
}

// InterruptedRefusals turns Interrupted into refusals.
func (s *Session) InterruptedRefusals() []Refusal {
	intr, _ := s.Interrupted()
	var out []Refusal
	for _, f := range intr {
		where := "the target"
		if f.Volume > 0 {
			where = fmt.Sprintf("volume %d", f.Volume)
		}
		out = append(out, Refusal{ID: "interrupted", Reason: fmt.Sprintf("a change of %s was interrupted (journal %s): it may be half-made", where, f.Journal), Advice: f.Advice})
	}
	return out
}

// advice is a journal's recovery hint, carrying --journal DIR when given.
func (s *Session) advice(info *journal.Info) string { return s.Advice(info) }

// Advice is what to do about a journal of this target (interrupted,
// damaged, missing), every command it names carrying the --journal DIR the
// session was given.
func (s *Session) Advice(info *journal.Info) string {
	return info.AdviceWith(quote(s.Path), quoteOpt(s.opts.JournalDir))
}

func quoteOpt(s string) string {
	if s == "" {
		return ""
	}
	return quote(s)
}

// CommandTarget is TARGET as recovery hints name it: with --journal DIR
// in front when the session was given one ("wuoffline undo " + it).
func (s *Session) CommandTarget() string {
	if s.opts.JournalDir != "" {
		return "--journal " + quote(s.opts.JournalDir) + " " + quote(s.Path)
	}
	return quote(s.Path)
}

func quote(s string) string {
	for _, c := range s {
		if c == ' ' || c == '\'' || c == '"' {
			return "'" + s + "'"
		}
	}
	return s
}

// Replay runs journal.UndoOn (resume false) or journal.ResumeOn for a
// journal of volume v, through the session's exclusive access. A journal in
// file coordinates (journal.SpaceFile, or Offset 0) is replayed on the
// whole target, which undo cuts back to its size before a change that grew
// it; one in volume coordinates (made before sessions) on the volume at
// Header.Offset. A damaged journal gives a *journal.DamagedError with the
// report of what the journal still described whole.
func (s *Session) Replay(v *Volume, info *journal.Info, resume bool) (*journal.Report, error) {
	if !s.opts.Write {
		return nil, fmt.Errorf("%s was opened read-only", s.Path)
	}
	dev := s.dev(s.cache)
	if !fileCoordinates(info.Header) {
		vw, err := s.Target.WriterAt(v.Volume)
		if err != nil {
			return nil, err
		}
		dev = volumeDevice{ReaderAt: v.Reader(), WriterAt: vw, sync: s.file.Sync}
	}
	replay := journal.UndoOn
	if resume {
		replay = journal.ResumeOn
	}
	rep, err := replay(info.Path, dev)
	s.forgetVolume()
	return rep, err
}

// forgetVolume drops what the session parsed: the bytes changed.
func (s *Session) forgetVolume() {
	for _, v := range s.vols {
		v.vol, v.volErr, v.parsed = nil, nil, false
	}
}

// TouchedDirs finds the newest journal of v and returns the directories
// (by MFT record) its ranges touched, and a description of that journal
// ("" when there is none). A damaged newest journal is used for what it
// still holds, and says so in the description; damaged lists every
// damaged, missing or unreadable journal of v with what to do, so that a
// caller never passes over one silently.
func (s *Session) TouchedDirs(v *Volume) (dirs []uint64, from string, damaged []string, err error) {
	infos, err := s.Journals(v)
	if err != nil || len(infos) == 0 {
		return nil, "", nil, err
	}
	for _, in := range infos {
		if in.Damaged() != nil {
			damaged = append(damaged, s.Advice(in))
		}
	}
	newest := infos[0]
	shift := int64(0)
	if fileCoordinates(newest.Header) {
		shift = v.Offset
	}
	ranges := make([]ntfs.Range, 0, len(newest.Records))
	for _, rec := range newest.Records {
		off := rec.Off - shift
		if off < 0 || off >= v.Size {
			continue
		}
		ranges = append(ranges, ntfs.Range{Off: off, Len: rec.Len})
	}
	w, err := ntfs.OpenReadOnly(v.Reader(), v.Size)
	if err != nil {
		return nil, "", damaged, err
	}
	if dirs, err = w.DirsTouchedBy(ranges); err != nil {
		return nil, "", damaged, err
	}
	what := newest.Header.Note
	if what == "" {
		what = "a fix"
	}
	from = fmt.Sprintf("%q (journal %s)", what, newest.Path)
	if newest.Damaged() != nil {
		from = fmt.Sprintf("the intact part of journal %s (DAMAGED: the directories it touched may be more; check --all checks everything)", newest.Path)
	}
	return dirs, from, damaged, nil
}
