package offline

import (
	"errors"
	"fmt"

	"github.com/wuoffline/wuoffline/hive"
)

// Check is one entry of the catalogue (repair-catalog.md, "Checks").
// Diagnose only reads; the same types gain Plan/Fix for `wuoffline fix`,
// which is why Result.Evidence carries the exact locations and old data.
type Check interface {
	// ID is the catalogue id ("softwaredistribution", "pending-xml", ...).
	ID() string
	// Case is the case the check belongs to.
	Case() Case
	// Diagnose examines the installation. It never writes and never
	// panics on damaged input: read errors become StatusFailed.
	Diagnose(in *Installation) Result
}

// Checks returns the catalogue in report order: failed startup first
// (a machine that does not boot matters most), then failed installation.
func Checks() []Check {
	return []Check{
		PendingXML{},
		CBSPending{},
		ComponentsMarkers{},
		SetupExecute{},
		ServicingTriggers{},
		PendingRenames{},
		RebootFlags{},
		TxR{},
		SoftwareDistribution{},
		Catroot2{},
		BITSQueue{},
		Services{},
		ServiceConfig{},
		RenamedBinaries{},
		UpdateTasks{},
		WUPolicies{},
		GroupPolicyFile{},
		UpdatePause{},
		IFEODebuggers{},
		Hosts{},
		Firewall{},
		Proxy{},
		OSUpgrade{},
		Clock{},
		Minifilters{},
	}
}

// CheckIDs lists the ids of Checks() in order.
func CheckIDs() []string {
	var ids []string
	for _, c := range Checks() {
		ids = append(ids, c.ID())
	}
	return ids
}

// newResult starts a result for c.
func newResult(c Check) Result {
	return Result{ID: c.ID(), Case: c.Case(), Status: StatusOK, Evidence: []Evidence{}}
}

// failed turns a read error into the result.
func failed(r Result, what string, err error) Result {
	r.Status = StatusFailed
	r.Summary = fmt.Sprintf("could not read %s", what)
	r.Error = err.Error()
	return r
}

// skipped marks a check that cannot apply.
func skipped(r Result, why string) Result {
	r.Status = StatusSkipped
	r.Summary = why
	return r
}

// RunChecks runs every check on the installation, recovering from a bug
// in one check so that the others still report.
func RunChecks(in *Installation) []Result {
	var out []Result
	for _, c := range Checks() {
		out = append(out, runOne(c, in))
	}
	return out
}

func runOne(c Check, in *Installation) (r Result) {
	defer func() {
		if e := recover(); e != nil {
			r = failed(newResult(c), "the installation", fmt.Errorf("internal error in check %s: %v", c.ID(), e))
		}
	}()
	return c.Diagnose(in)
}

// notFound reports whether err means "absent".
func notFound(err error) bool {
	return errors.Is(err, hive.ErrNotFound)
}

// openKey opens a key, returning (nil, nil) when it does not exist.
func openKey(h *hive.Hive, path string) (*hive.Key, error) {
	k, err := h.OpenKey(path)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return k, nil
}

// value returns a value of k, (nil, nil) when absent.
func value(k *hive.Key, name string) (*hive.Value, error) {
	v, err := k.Value(name)
	if err != nil {
		if notFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return v, nil
}
