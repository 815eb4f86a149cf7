package offline

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/wuoffline/wuoffline/hive"
)

// Paths of the registry hives on a Windows volume (repair-catalog.md, "Hives").
const (
	configDir      = "Windows/System32/config"
	systemHivePath = configDir + "/SYSTEM"
	softwareHive   = configDir + "/SOFTWARE"
	componentsHive = configDir + "/COMPONENTS"
)

// IsWindows reports whether fsys is the root of a Windows installation:
// the volume has both Windows\System32\config\SYSTEM and SOFTWARE.
func IsWindows(fsys fs.FS) bool {
	for _, p := range []string{systemHivePath, softwareHive} {
		fi, err := fs.Stat(fsys, p)
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// Installation is one Windows installation, opened read-only: its volume's
// file system, its hives (in their recovered state when dirty) and what was
// learnt from them. Checks read it; nothing in it writes.
type Installation struct {
	// FS is the root of the Windows volume (slash paths, case-insensitive).
	FS fs.FS
	// Letter is the drive letter the printed commands use ("D:") and
	// LetterKnown whether the user gave it (else it is a placeholder).
	Letter      string
	LetterKnown bool
	// Now is the rescue machine's clock (for the clock check).
	Now time.Time

	Version Version

	// System, Software and Components are the opened hives; nil when the
	// hive is absent or could not be read (see Hives).
	System, Software, Components *hive.Hive
	// Hives says how each hive was read.
	Hives []HiveState

	// ControlSet is the valid current control set number (1..999), or 0
	// when SYSTEM\Select\Current is missing, out of range or names a
	// control set that does not exist.
	ControlSet int
	// CCS is the control set key name that checks read ("ControlSet001"):
	// the current one, or ControlSet001 for reporting only when ControlSet is 0.
	CCS string

	// Refusals are the installation-level reasons fix would refuse
	// (control set, hives); the volume's NTFS refusals are added by the caller.
	Refusals []Refusal

	logs    *Logs
	sd      *sdScan
	closers []io.Closer
}

// OpenInstallation opens the Windows installation at the root of fsys.
// letter is the drive letter to print in commands ("" for the placeholder).
// A hive that cannot be opened is recorded in Hives and Refusals, not
// returned as an error: diagnose still reports everything else.
func OpenInstallation(fsys fs.FS, letter string) (*Installation, error) {
	if !IsWindows(fsys) {
		return nil, errors.New("offline: no Windows installation (Windows\\System32\\config\\SYSTEM and SOFTWARE) on this volume")
	}
	in := &Installation{FS: fsys, Now: time.Now()}
	in.Letter, in.LetterKnown = "D:", false
	if letter != "" {
		in.Letter, in.LetterKnown = strings.ToUpper(letter), true
	}
	var err error
	in.System, err = in.openHive("SYSTEM", systemHivePath)
	if err != nil {
		in.Refusals = append(in.Refusals, hiveRefusal("SYSTEM", err))
	}
	in.Software, err = in.openHive("SOFTWARE", softwareHive)
	if err != nil {
		in.Refusals = append(in.Refusals, hiveRefusal("SOFTWARE", err))
	}
	in.Components, err = in.openHive("COMPONENTS", componentsHive)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		in.Refusals = append(in.Refusals, hiveRefusal("COMPONENTS", err))
	}
	in.readControlSet()
	in.readVersion()
	return in, nil
}

func hiveRefusal(name string, err error) Refusal {
	return Refusal{
		ID:     "hive",
		Reason: fmt.Sprintf("the %s hive cannot be read exactly: %v", name, err),
		Advice: "do not edit this installation offline; restore the hive from Windows\\System32\\config\\RegBack or a backup, or reinstall",
	}
}

// Close releases the files the installation holds open.
func (in *Installation) Close() error {
	var first error
	for _, c := range in.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	in.closers = nil
	return first
}

// openFile opens a regular file of the volume as an io.ReaderAt with its size.
func (in *Installation) openFile(p string) (io.ReaderAt, int64, error) {
	f, err := in.FS.Open(p)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file", winPath(p))
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, 0, fmt.Errorf("%s: file system gives no random access", winPath(p))
	}
	in.closers = append(in.closers, f)
	return ra, fi.Size(), nil
}

// openHive opens a hive with its transaction logs (NAME.LOG1, NAME.LOG2 in
// any case, beside it). The hive engine applies the logs in memory when the
// primary is dirty, so a dirty hive is read in its recovered state.
func (in *Installation) openHive(name, p string) (*hive.Hive, error) {
	st := HiveState{Name: name, Path: winPath(p)}
	defer func() { in.Hives = append(in.Hives, st) }()
	ra, size, err := in.openFile(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			st.Error = err.Error()
		}
		return nil, err
	}
	st.Present = true
	var logs []hive.Log
	ents, _ := fs.ReadDir(in.FS, path.Dir(p))
	for _, suffix := range []string{".LOG1", ".LOG2"} {
		for _, e := range ents {
			if strings.EqualFold(e.Name(), name+suffix) && e.Type().IsRegular() {
				lr, ls, err := in.openFile(path.Dir(p) + "/" + e.Name())
				if err != nil {
					continue
				}
				logs = append(logs, hive.Log{Name: e.Name(), R: lr, Size: ls})
				st.Logs = append(st.Logs, e.Name())
				break
			}
		}
	}
	h, err := hive.Open(ra, size, logs...)
	if err != nil {
		err = fmt.Errorf("%s: %w", winPath(p), err)
		st.Error = err.Error()
		return nil, err
	}
	st.Dirty, st.Recovered = h.Dirty(), h.Recovered()
	return h, nil
}

// readControlSet applies the rule of repair-catalog.md: the current control
// set is SYSTEM\Select\Current, 1..999, and it must exist; otherwise fix
// must refuse, and ControlSet001 is read for reporting only.
func (in *Installation) readControlSet() {
	in.CCS = "ControlSet001"
	if in.System == nil {
		return
	}
	reason := ""
	n, err := regDWORD(in.System, "Select", "Current")
	switch {
	case err != nil:
		reason = fmt.Sprintf(`SYSTEM\Select\Current cannot be read: %v`, err)
	case n < 1 || n > 999:
		reason = fmt.Sprintf(`SYSTEM\Select\Current is %d, outside 1..999`, n)
	default:
		name := fmt.Sprintf("ControlSet%03d", n)
		if _, err := in.System.OpenKey(name); err != nil {
			reason = fmt.Sprintf(`SYSTEM\Select\Current names %s, which cannot be opened: %v`, name, err)
		} else {
			in.ControlSet, in.CCS = int(n), name
			return
		}
	}
	in.Refusals = append(in.Refusals, Refusal{
		ID:     "control-set",
		Reason: reason + "; ControlSet001 was read for this report only",
		Advice: "boot Windows once (or repair the SYSTEM hive) so that it records its current control set; wuoffline never guesses which control set Windows uses",
	})
}

// readVersion reads SOFTWARE\Microsoft\Windows NT\CurrentVersion.
func (in *Installation) readVersion() {
	v := &in.Version
	if in.Software == nil {
		v.Product = "Windows (version unknown: SOFTWARE hive unreadable)"
		return
	}
	const cv = `Microsoft\Windows NT\CurrentVersion`
	v.RegistryProduct, _ = regString(in.Software, cv, "ProductName")
	v.Edition, _ = regString(in.Software, cv, "EditionID")
	v.DisplayVersion, _ = regString(in.Software, cv, "DisplayVersion")
	if v.DisplayVersion == "" {
		v.DisplayVersion, _ = regString(in.Software, cv, "ReleaseId")
	}
	for _, name := range []string{"CurrentBuild", "CurrentBuildNumber"} {
		if s, err := regString(in.Software, cv, name); err == nil {
			if b, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && b > 0 {
				v.Build = b
				break
			}
		}
	}
	if u, err := regDWORD(in.Software, cv, "UBR"); err == nil {
		v.UBR = int(u)
	}
	v.Family = familyOf(v.Build)
	v.Product = v.RegistryProduct
	// The registry's ProductName still says "Windows 10" on Windows 11;
	// the build number is what tells them apart (repair-catalog.md).
	if v.Build >= 22000 && strings.Contains(v.Product, "Windows 10") {
		v.Product = strings.Replace(v.Product, "Windows 10", "Windows 11", 1)
	}
	if v.Product == "" {
		v.Product = "Windows"
		if v.Family != "" {
			v.Product += " " + v.Family
		}
	}
}

// familyOf maps a build number to the column of the service defaults table.
func familyOf(build int) string {
	switch {
	case build >= 22000:
		return "11"
	case build >= 10240:
		return "10"
	case build >= 9200:
		return "8.1" // 8.0 (9200) uses the 8.1 column: the closest documented
	case build >= 7600:
		return "7"
	}
	return ""
}

// Logs returns the log evidence of the installation, reading it on first use.
func (in *Installation) Logs() *Logs {
	if in.logs == nil {
		in.logs = ReadLogs(in.FS)
	}
	return in.logs
}

// ccsKey is the path of a key below the control set the checks read.
func (in *Installation) ccsKey(rel string) string { return in.CCS + `\` + rel }

// winPath turns a slash path of the volume into the `\` form people know.
func winPath(p string) string { return strings.ReplaceAll(p, "/", `\`) }

// regString reads a string value (SZ/EXPAND_SZ).
func regString(h *hive.Hive, key, name string) (string, error) {
	k, err := h.OpenKey(key)
	if err != nil {
		return "", err
	}
	v, err := k.Value(name)
	if err != nil {
		return "", err
	}
	return v.Text()
}

// regDWORD reads a DWORD value.
func regDWORD(h *hive.Hive, key, name string) (uint32, error) {
	k, err := h.OpenKey(key)
	if err != nil {
		return 0, err
	}
	v, err := k.Value(name)
	if err != nil {
		return 0, err
	}
	return v.Uint32()
}

// valueEvidence describes a registry value with its data and raw bytes.
func valueEvidence(hiveName, key string, v *hive.Value, detail string) Evidence {
	ev := Evidence{Kind: "value", Hive: hiveName, Key: key, Value: v.Name(), Type: v.Type().String(), Detail: detail}
	raw, err := v.Data()
	if err == nil {
		ev.Raw = raw
	}
	ev.Old = valueText(v)
	return ev
}

// valueText renders a value's data for people.
func valueText(v *hive.Value) string {
	switch v.Type() {
	case hive.RegSZ, hive.RegExpandSZ, hive.RegLink:
		s, err := v.Text()
		if err != nil {
			return "(unreadable: " + err.Error() + ")"
		}
		return s
	case hive.RegMultiSZ:
		ss, err := v.MultiText()
		if err != nil {
			return "(unreadable: " + err.Error() + ")"
		}
		return strings.Join(ss, " | ")
	case hive.RegDWORD, hive.RegDWORDBigEndian:
		n, err := v.Uint32()
		if err != nil {
			return "(unreadable: " + err.Error() + ")"
		}
		return strconv.FormatUint(uint64(n), 10)
	case hive.RegQWORD:
		n, err := v.Uint64()
		if err != nil {
			return "(unreadable: " + err.Error() + ")"
		}
		return strconv.FormatUint(n, 10)
	}
	b, err := v.Data()
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	// Servicing stores some identifiers (PendingXmlIdentifier) as UTF-16
	// text in a REG_BINARY: show the text when that is what it is.
	if t, ok := printableUTF16(b); ok {
		return t + " (UTF-16 text)"
	}
	const max = 64
	if len(b) > max {
		return hex.EncodeToString(b[:max]) + "..."
	}
	return hex.EncodeToString(b)
}

// keyEvidence describes a registry key (its presence is the evidence).
func keyEvidence(hiveName, key string, k *hive.Key, detail string) Evidence {
	ev := Evidence{Kind: "key", Hive: hiveName, Key: key, Detail: detail}
	if k != nil {
		if t := k.LastWritten(); !t.IsZero() {
			ev.Time = &t
		}
	}
	return ev
}

// printableUTF16 decodes b as UTF-16LE text of printable ASCII (trailing
// NULs allowed); ok is false for anything else.
func printableUTF16(b []byte) (string, bool) {
	if len(b) < 4 || len(b)%2 != 0 {
		return "", false
	}
	var sb strings.Builder
	end := false
	for i := 0; i < len(b); i += 2 {
		c := uint16(b[i]) | uint16(b[i+1])<<8
		switch {
		case c == 0:
			end = true
		case end || c < 0x20 || c > 0x7e:
			return "", false
		default:
			sb.WriteByte(byte(c))
		}
	}
	return sb.String(), sb.Len() > 0
}
