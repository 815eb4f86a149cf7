package session

import (
	"errors"
	"fmt"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/ntfs"
)

// adviceUnsupported is what a user can do when the NTFS writer cannot make
// a change in this volume's layout: nothing was written, and Windows itself
// (or the mounted-directory route) can make the same change.
const adviceUnsupported = "nothing was written; make this change from Windows or WinPE through the mounted volume " +
	"(`wuoffline fix D:\\.` uses the operating system's own calls), or run `chkdsk /f` if the layout is damage"

// refusalOf turns the errors that mean "this would be unsafe or is not
// supported here, nothing was written" into a *RefusedError (exit 3), with
// what was being done (label) in the reason; other errors come back as they
// are. The NTFS writer and the hive editor stop before staging anything on
// these, so a refusal never follows a partial plan.
func refusalOf(label string, err error) error {
	if err == nil {
		return nil
	}
	var re *RefusedError
	if errors.As(err, &re) {
		return err
	}
	what := func(s string) string {
		if label == "" {
			return s
		}
		return label + ": " + s
	}
	var nre *ntfs.RefusedError
	if errors.As(err, &nre) {
		out := &RefusedError{}
		for _, r := range nre.Refusals {
			out.Refusals = append(out.Refusals, Refusal{ID: r.ID, Reason: what(r.Reason), Advice: r.Advice})
		}
		return out
	}
	var de *hive.DamagedError
	if errors.As(err, &de) {
		return &RefusedError{Refusals: []Refusal{{ID: "hive-damaged", Reason: what(err.Error()),
			Advice: "the hive is damaged where this change would write: nothing was written; see `wuoffline reg check HIVE` " +
				"(the hive file taken out of the volume, or from WinPE), and repair it from a backup (RegBack, a restore point)"}}}
	}
	for _, sentinel := range []error{ntfs.ErrMFTFull, ntfs.ErrNeedsAttributeList, ntfs.ErrUnsupportedData, ntfs.ErrMFTAttrList} {
		if errors.Is(err, sentinel) {
			return &RefusedError{Refusals: []Refusal{{ID: "ntfs-unsupported", Reason: what(fmt.Sprint(err)), Advice: adviceUnsupported}}}
		}
	}
	return err
}
