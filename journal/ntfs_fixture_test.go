package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// tskClusters asks sleuthkit's istat for the clusters of one attribute
// ("128-3") of MFT entry inode: the numbers listed under its Type line.
func tskClusters(t *testing.T, img, inode, attr string) []int64 {
	t.Helper()
	out := string(testutil.Run(t, "istat", img, inode))
	i := strings.Index(out, "("+attr+")")
	if i < 0 {
		t.Fatalf("istat %s: no attribute %s in\n%s", inode, attr, out)
	}
	var cs []int64
	for _, line := range strings.Split(out[i:], "\n")[1:] {
		if strings.HasPrefix(line, "Type:") || strings.TrimSpace(line) == "" {
			break
		}
		for _, f := range strings.Fields(line) {
			c, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				t.Fatalf("istat %s: cluster %q: %v", inode, f, err)
			}
			cs = append(cs, c)
		}
	}
	return cs
}

// TestNTFSFixture runs the journal on a real NTFS volume made by Windows
// (charlie.dd), with sleuthkit (icat, istat, fsstat) and ntfsprogs
// (ntfscp) as the independent readers and the "later" writer: a fix that
// rewrites the data of Nine.txt and of its stream :111 is interrupted
// after one write, detected, finished with Resume; then "Windows" rewrites
// Nine.txt (ntfscp); undo takes back the stream, leaves Nine.txt as the
// later writer left it, and says so.
func TestNTFSFixture(t *testing.T) {
	for _, tool := range []string{"fsstat", "istat", "icat", "ntfscp"} {
		testutil.RequireTool(t, tool)
	}
	img := testutil.Decompress(t, testutil.SharedFixture(t, "ntfs/charlie.dd.bz2"), "")
	dir := filepath.Dir(img)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	orig := fileBytes(t, f)
	size := int64(len(orig))
	var cluster int64
	for _, line := range strings.Split(string(testutil.Run(t, "fsstat", img)), "\n") {
		if v, ok := strings.CutPrefix(line, "Cluster Size: "); ok {
			cluster, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if cluster <= 0 {
		t.Fatal("fsstat: no cluster size")
	}
	icat := func(attr string) []byte { return testutil.Run(t, "icat", img, "38-"+attr) }
	origNine, orig111 := icat("128-3"), icat("128-11")
	if len(origNine) != 5000 || len(orig111) != 5005 {
		t.Fatalf("fixture: Nine.txt %d bytes, :111 %d bytes", len(origNine), len(orig111))
	}

	// The plan: new contents for both, cluster by cluster as istat lists
	// them, in 512-byte sectors as a raw volume needs.
	o := NewOverlay(f, size)
	o.SetAlign(512)
	plan := func(attr, label string, data []byte) {
		for i, c := range tskClusters(t, img, "38", attr) {
			lo := int64(i) * cluster
			if lo >= int64(len(data)) {
				break
			}
			chunk := data[lo:min(lo+cluster, int64(len(data)))]
			if _, err := o.Labeled(label).WriteAt(chunk, c*cluster); err != nil {
				t.Fatal(err)
			}
		}
	}
	newNine := bytes.Repeat([]byte("8"), 5000)
	new111 := bytes.Repeat([]byte("1"), 5005)
	plan("128-3", "Nine.txt data", newNine)
	plan("128-11", "Nine.txt:111 data", new111)
	if len(o.Ranges()) != 2 {
		t.Fatalf("plan: %+v, want one range per stream", o.Ranges())
	}

	id := VolumeID{Serial: 0x1234, Size: size, Name: filepath.Base(img)}
	j := prepared(t, dir, Header{ID: id, Target: img, Tool: "test"}, o)
	fw := testutil.NewFaultWriter(f, 1, testutil.FaultError)
	if err := j.Apply(fw, fw.Sync(f.Sync)); !errors.Is(err, testutil.ErrInjected) {
		t.Fatalf("Apply = %v, want the injected fault", err)
	}
	j.Close()
	if !bytes.Equal(icat("128-3"), newNine) || !bytes.Equal(icat("128-11"), orig111) {
		t.Fatal("icat: after one write, Nine.txt should be new and :111 original")
	}
	infos, err := Find(dir, id)
	if err != nil || len(infos) != 1 || !infos[0].Interrupted() {
		t.Fatalf("Find: %v, %v", infos, err)
	}
	if rep, err := Resume(infos[0].Path, f, f, f.Sync); err != nil || rep.Done != 1 || rep.Already != 1 {
		t.Fatalf("Resume: %+v, %v", rep, err)
	}
	if !bytes.Equal(icat("128-3"), newNine) || !bytes.Equal(icat("128-11"), new111) {
		t.Fatal("icat: after resume both streams should be new")
	}

	// Windows boots and rewrites Nine.txt (in place, as ntfscp does).
	seven := filepath.Join(dir, "seven.txt")
	if err := os.WriteFile(seven, bytes.Repeat([]byte("7"), 5000), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "ntfscp", "-f", img, seven, "Nine.txt")
	if !bytes.Equal(icat("128-3"), bytes.Repeat([]byte("7"), 5000)) {
		t.Fatal("ntfscp did not rewrite Nine.txt in place")
	}
	before := fileBytes(t, f)

	rep, err := Undo(infos[0].Path, f, f, f.Sync)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Done != 1 || rep.Changed != 1 || rep.Complete() {
		t.Fatalf("undo: %s", rep.Summary())
	}
	for _, r := range rep.Results {
		want := map[string]Outcome{"Nine.txt data": ChangedSince, "Nine.txt:111 data": Restored}[r.Label]
		if r.Outcome != want {
			t.Errorf("%s: %s, want %s", r.Label, r.Outcome, want)
		}
	}
	if !bytes.Equal(icat("128-3"), bytes.Repeat([]byte("7"), 5000)) || !bytes.Equal(icat("128-11"), orig111) {
		t.Fatal("icat: undo should keep the later Nine.txt and restore :111")
	}
	// Undo wrote nothing but the :111 range.
	after := fileBytes(t, f)
	r111 := o.Ranges()[1]
	for i := range after {
		if after[i] != before[i] && (int64(i) < r111.Off || int64(i) >= r111.Off+r111.Len) {
			t.Fatalf("undo changed byte %#x outside the range it restored", i)
		}
	}
	// Put Nine.txt back as it was and undo again: now everything is
	// original, byte for byte.
	if err := os.WriteFile(seven, origNine, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "ntfscp", "-f", img, seven, "Nine.txt")
	if rep, err := Undo(infos[0].Path, f, f, f.Sync); err != nil || !rep.Complete() {
		t.Fatalf("second undo: %+v, %v", rep, err)
	}
	if !bytes.Equal(fileBytes(t, f), orig) {
		t.Fatal("the volume is not byte for byte the original")
	}
}
