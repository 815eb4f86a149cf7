package hive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// exportAll runs the three independent registry readers on a hive file and
// returns their outputs (each tool must accept the file).
func exportAll(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	out["hivexregedit"] = testutil.Run(t, testutil.RequireTool(t, "hivexregedit"), "--export", path, `\`)
	out["regfexport"] = testutil.Run(t, testutil.RequireTool(t, "regfexport"), path)
	out["reglookup"] = testutil.Run(t, testutil.RequireTool(t, "reglookup"), "-H", path)
	return out
}

// TestRecoveredHiveExternalTools writes recovered hives to temporary files
// (tests only: recovery itself never writes) and checks that hivex,
// libregf and reglookup parse them and export exactly what they export
// from the hive Windows itself recovered from the same files. Each export
// of the unrecovered primary must differ, or the comparison proves nothing.
func TestRecoveredHiveExternalTools(t *testing.T) {
	for _, tc := range []struct {
		name, primary, windows string
		logs                   []string
	}{
		{"NewDirtyHive1", "NewDirtyHive1/NewDirtyHive", "NewDirtyHive1/RecoveredHive_Windows10",
			[]string{"NewDirtyHive1/NewDirtyHive.LOG1", "NewDirtyHive1/NewDirtyHive.LOG2"}},
		{"OldDirtyHive", "OldDirtyHive/OldDirtyHive", "OldDirtyHive/RecoveredHive_Windows7",
			[]string{"OldDirtyHive/OldDirtyHive.LOG1", "OldDirtyHive/OldDirtyHive.LOG2"}},
		{"BadBaseBlockHive", "BadBaseBlockHive/BadBaseBlockHive", "OldDirtyHive/RecoveredHive_Windows7",
			[]string{"BadBaseBlockHive/BadBaseBlockHive.LOG1", "BadBaseBlockHive/BadBaseBlockHive.LOG2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, primary, err := recoverFixture(t, tc.primary, tc.logs...)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "recovered")
			if err := os.WriteFile(path, rc.image(t, primary), 0o600); err != nil {
				t.Fatal(err)
			}
			got := exportAll(t, path)
			want := exportAll(t, testutil.SharedFixture(t, "hives/yarp/"+tc.windows))
			for tool, w := range want {
				if len(got[tool]) < 100 {
					t.Errorf("%s: export of the recovered hive is only %d bytes", tool, len(got[tool]))
				}
				if !bytes.Equal(got[tool], w) {
					t.Errorf("%s: export of the recovered hive differs from Windows' recovered hive (%d vs %d bytes)",
						tool, len(got[tool]), len(w))
				}
			}
			// hivex reads the dirty primary as it is (it does not replay
			// logs): its export must not already match.
			if tc.name != "BadBaseBlockHive" {
				before := testutil.Run(t, "hivexregedit", "--export", testutil.SharedFixture(t, "hives/yarp/"+tc.primary), `\`)
				if bytes.Equal(before, want["hivexregedit"]) {
					t.Error("the unrecovered primary already exports like Windows' recovered hive: the check is void")
				}
			}
		})
	}
}
