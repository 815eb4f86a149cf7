package testutil

import (
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SambaACL is Samba's reading of an ACL: its revision and, per ACE, type,
// flags, access mask and trustee SID ("" for an ACE type above 3); numbers
// as JSON gives them (float64).
type SambaACL struct {
	Revision int     `json:"revision"`
	ACEs     [][]any `json:"aces"`
}

// SambaSD is Samba's reading of one security descriptor (or its Error).
type SambaSD struct {
	Label    string    `json:"label"`
	Error    string    `json:"error"`
	Revision int       `json:"revision"`
	Control  int       `json:"control"`
	Owner    *string   `json:"owner"`
	Group    *string   `json:"group"`
	DACL     *SambaACL `json:"dacl"`
	SACL     *SambaACL `json:"sacl"`
	SDDL     string    `json:"sddl"`
}

// SambaInput is one descriptor for SambaDecode: binary (Data) or, when
// SDDL is set, an SDDL string Samba parses itself.
type SambaInput struct {
	Label string
	Data  []byte
	SDDL  string
}

// SambaDecode decodes security descriptors with Samba's NDR and SDDL code
// (samba_decode.py beside this file, python3-samba), which shares no code
// with wuoffline; skips (fails in CI) without python3-samba.
func SambaDecode(t testing.TB, in []SambaInput) []SambaSD {
	t.Helper()
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import samba.dcerpc.security").Run() != nil {
		Unavailable(t, "python3 with the samba module (apt-get install python3-samba)")
	}
	var sb strings.Builder
	for _, d := range in {
		if d.SDDL != "" {
			sb.WriteString(d.Label + " sddl:" + d.SDDL + "\n")
		} else {
			sb.WriteString(d.Label + " " + hex.EncodeToString(d.Data) + "\n")
		}
	}
	cmd := exec.Command(py, filepath.Join(RepoRoot(t), "internal", "testutil", "samba_decode.py"))
	cmd.Stdin = strings.NewReader(sb.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("samba_decode.py: %v", err)
	}
	var res []SambaSD
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var s SambaSD
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("samba_decode.py: %v: %s", err, line)
		}
		res = append(res, s)
	}
	if len(res) != len(in) {
		t.Fatalf("samba decoded %d descriptors, want %d", len(res), len(in))
	}
	return res
}
