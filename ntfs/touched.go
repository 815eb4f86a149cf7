package ntfs

import (
	"fmt"
	"io"
	"sort"
)

// DirsTouchedBy returns the directories, by MFT record number, whose
// structures the given volume byte ranges changed: for example the ranges
// of a fix's journal, so that a check can cover "what a fix touched" without
// being told the paths. A range over an MFT record counts that record: a
// directory counts itself; any other file counts its parents (the parent
// references of its $FILE_NAME attributes). A rename also rewrites both
// parents' records (their change times, see setChangeTime), so a directory
// whose INDX blocks changed is found through its own record too.
// Ranges outside $MFT (INDX blocks, file data) add nothing by themselves.
func (w *Writer) DirsTouchedBy(ranges []Range) ([]uint64, error) {
	return w.g.dirsTouched(w.r, ranges)
}

// dirsTouched is DirsTouchedBy on the volume read through r.
func (g *geometry) dirsTouched(r io.ReaderAt, ranges []Range) ([]uint64, error) {
	spans, err := g.spans(g.mftRuns, 0, g.mftBytes)
	if err != nil {
		return nil, fmt.Errorf("ntfs: mapping $MFT: %w", err)
	}
	nums := map[uint64]bool{}
	var logical int64 // $MFT byte offset where the span starts
	for _, s := range spans {
		for _, r := range ranges {
			lo, hi := max(r.Off, s.off), min(r.Off+r.Len, s.off+s.n)
			if lo >= hi {
				continue
			}
			first := (logical + lo - s.off) / g.recSize
			last := (logical + hi - 1 - s.off) / g.recSize
			for n := first; n <= last; n++ {
				nums[uint64(n)] = true
			}
		}
		logical += s.n
	}
	dirs := map[uint64]bool{}
	for num := range nums {
		rec, err := g.readRecord(r, num)
		if err != nil {
			return nil, err
		}
		if !rec.InUse() {
			continue // a freed record: its parent's record was touched too
		}
		recs := []*Record{rec}
		if base := rec.BaseRef(); base != 0 {
			// An extension record: what matters is its base record, and
			// the $FILE_NAMEs it holds itself (ntfs-3g and Windows move
			// them out of a full base record): a change of a file's sizes
			// rewrites the one holding the name and its parent's index
			// entry, not the parent's record.
			if rec, err = g.readRecord(r, RefNum(base)); err != nil {
				return nil, err
			}
			recs = append(recs, rec)
		}
		if rec.IsDir() {
			dirs[rec.Num] = true
		}
		for _, fr := range recs {
			fns, err := fr.fileNames()
			if err != nil {
				return nil, fmt.Errorf("ntfs: MFT record %d: %w", fr.Num, err)
			}
			for _, fn := range fns {
				dirs[RefNum(fn.parent)] = true
			}
		}
	}
	out := make([]uint64, 0, len(dirs))
	for d := range dirs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}
