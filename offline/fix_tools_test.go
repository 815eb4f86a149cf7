package offline

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/image"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// regExport is a hivexregedit --export: key (lower case, `\`-rooted) ->
// value name (lower case) -> the value's line.
type regExport map[string]map[string]string

func parseRegExport(b []byte) regExport {
	out := regExport{}
	var cur map[string]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var pending string
	for sc.Scan() {
		ln := strings.TrimRight(sc.Text(), "\r")
		if pending != "" {
			ln = pending + strings.TrimSpace(ln)
			pending = ""
		}
		if strings.HasSuffix(ln, `\`) && !strings.HasPrefix(ln, "[") {
			pending = strings.TrimSuffix(ln, `\`)
			continue
		}
		switch {
		case strings.HasPrefix(ln, "[") && strings.HasSuffix(ln, "]"):
			k := strings.ToLower(ln[1 : len(ln)-1])
			cur = map[string]string{}
			out[k] = cur
		case cur == nil || ln == "":
		case strings.HasPrefix(ln, "@="):
			cur[""] = ln
		case strings.HasPrefix(ln, `"`):
			i := strings.Index(ln, `"=`)
			for i > 0 && ln[i-1] == '\\' { // an escaped quote inside the name
				j := strings.Index(ln[i+1:], `"=`)
				if j < 0 {
					break
				}
				i += 1 + j
			}
			if i > 0 {
				name := strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(ln[1:i])
				cur[strings.ToLower(name)] = ln
			}
		}
	}
	return out
}

// TestFixIndependentTools fixes the broken GPT disk and checks the result
// with tools that share no code with wuoffline: sleuthkit (fls, ifind,
// icat) for the names and the extracted hives and hosts file, hivexregedit
// --export for the registry (the changes the plan names and nothing else),
// and an ntfs-3g read-only mount for the renamed folders' contents.
func TestFixIndependentTools(t *testing.T) {
	for _, tool := range []string{"fls", "ifind", "icat", "hivexregedit"} {
		testutil.RequireTool(t, tool)
	}
	img := testutil.TestImage(t, "broken-gpt.img")
	vol, sect, icatPath := sleuthkitVolume(t, img, 3)
	dir := t.TempDir()
	export := func(name, tag string) regExport {
		return hivexExport(t, filepath.Join(dir, tag+"-"+name), icatPath("/Windows/System32/config/"+name))
	}
	hives := []string{"SYSTEM", "SOFTWARE", "COMPONENTS"}
	before := map[string]regExport{}
	for _, h := range hives {
		before[h] = export(h, "before")
	}
	treeBefore := mountedTree(t, img, vol, []string{"Windows/SoftwareDistribution", "Windows/System32/catroot2", "Windows/WinSxS/pending.xml"})

	rep := FixTarget(img, FixOptions{Now: fixedNow})
	if rep.State != FixDone {
		t.Fatalf("fix: %s %s", rep.State, rep.Error)
	}
	acts := rep.Volumes[0].Actions

	// Names, by fls.
	flsRenamed(t, img, sect, acts)

	// The same, by libfsntfs (fsntfsinfo -F): the new paths resolve, the
	// old ones do not.
	if _, err := exec.LookPath("fsntfsinfo"); err != nil {
		testutil.Unavailable(t, "fsntfsinfo not installed")
	} else {
		for _, a := range acts {
			if a.Op != "rename" {
				continue
			}
			newOut, errNew := exec.Command("fsntfsinfo", "-o", fmt.Sprint(vol.Offset), "-F", `\`+a.To, img).CombinedOutput()
			_, errOld := exec.Command("fsntfsinfo", "-o", fmt.Sprint(vol.Offset), "-F", `\`+a.Path, img).CombinedOutput()
			if errNew != nil || errOld == nil {
				t.Errorf("fsntfsinfo: %s found: %v; %s found: %v\n%s", a.To, errNew == nil, a.Path, errOld == nil, newOut)
			}
		}
	}

	// Contents of the renamed folders, by an ntfs-3g mount.
	treeAfter := mountedTree(t, img, vol, []string{"Windows/SoftwareDistribution.old.1", "Windows/System32/catroot2.old", "Windows/WinSxS/pending.xml.old"})
	if treeBefore != nil {
		if len(treeBefore) != len(treeAfter) || len(treeBefore) < 10 {
			t.Errorf("ntfs-3g: %d files before, %d after", len(treeBefore), len(treeAfter))
		}
		for k, sum := range treeBefore {
			nk := strings.NewReplacer("Windows/SoftwareDistribution", "Windows/SoftwareDistribution.old.1",
				"Windows/System32/catroot2", "Windows/System32/catroot2.old", "pending.xml", "pending.xml.old").Replace(k)
			if treeAfter[nk] != sum {
				t.Errorf("ntfs-3g: %s changed or missing after the rename (as %s)", k, nk)
			}
		}
	}

	// The whole volume, by ntfsprogs' own consistency pass (no writes).
	if os.Geteuid() == 0 {
		testutil.RequireTool(t, "ntfsfix")
		loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-r", "-f", "--show", "-o", fmt.Sprint(vol.Offset), "--sizelimit", fmt.Sprint(vol.Size), img)))
		out := testutil.Run(t, "ntfsfix", "-n", loop)
		exec.Command("losetup", "-d", loop).Run()
		if !strings.Contains(string(out), "processed successfully") {
			t.Errorf("ntfsfix -n after fix:\n%s", out)
		}
	}

	// hosts, by icat.
	hosts := string(icatPath("/Windows/System32/drivers/etc/hosts"))
	// 11 update lines, 3 in the tools' own styles (::1, <hex>-1.l CDN names)
	// and privacy.sexy's marked line.
	if ms := ParseHosts([]byte(hosts)); len(ms) != 0 || strings.Count(hosts, HostsMarker) != 15 {
		t.Errorf("hosts after fix: %d update lines active, %d marked", len(ms), strings.Count(hosts, HostsMarker))
	}

	// The registry, by hivexregedit: exactly the planned changes.
	for _, h := range hives {
		compareRegistry(t, h, expectedRegistry(before[h], acts, h), export(h, "after"))
	}
}

// sleuthkitVolume finds volume index of the image and returns it, its
// start sector (for sleuthkit's -o) and a reader of a file by path through
// ifind and icat.
func sleuthkitVolume(t *testing.T, img string, index int) (image.Volume, string, func(string) []byte) {
	t.Helper()
	tg, err := image.Open(img, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var vol image.Volume
	for _, v := range tg.Volumes {
		if v.Index == index {
			vol = v
		}
	}
	tg.Close()
	sect := fmt.Sprint(vol.Offset / 512)
	return vol, sect, func(p string) []byte {
		out := testutil.Run(t, "ifind", "-o", sect, "-n", p, img)
		return testutil.Run(t, "icat", "-o", sect, img, strings.TrimSpace(string(out)))
	}
}

// hivexExport writes hive data to path and exports it with hivexregedit.
func hivexExport(t *testing.T, path string, data []byte) regExport {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return parseRegExport(testutil.Run(t, "hivexregedit", "--export", path, `\`))
}

// flsRenamed lists the volume at sector sect of img with fls -r -p and
// fails t for every rename action whose old path is still listed or new
// path is not. It returns every listed path of an allocated entry (deleted
// ones left out), lower case, '/'-separated.
func flsRenamed(t *testing.T, img, sect string, acts []FixAction) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, ln := range strings.Split(string(testutil.Run(t, "fls", "-o", sect, "-r", "-p", img)), "\n") {
		// "r/r * 3977:\tpath" is a deleted entry: not a name on the volume.
		if i := strings.Index(ln, ":\t"); i >= 0 && !strings.Contains(ln[:i], " * ") {
			names[strings.ToLower(ln[i+2:])] = true
		}
	}
	for _, a := range acts {
		if a.Op != "rename" {
			continue
		}
		from := strings.ToLower(strings.ReplaceAll(a.Path, `\`, "/"))
		to := strings.ToLower(strings.ReplaceAll(a.To, `\`, "/"))
		if names[from] || !names[to] {
			t.Errorf("fls: after renaming %s to %s: old listed %v, new listed %v", a.Path, a.To, names[from], names[to])
		}
	}
	return names
}

// compareRegistry fails t for every key and value where the export after a
// fix differs from want (expectedRegistry's result) for hive h.
func compareRegistry(t *testing.T, h string, want, after regExport) {
	t.Helper()
	for k, vals := range want {
		got, ok := after[k]
		if !ok {
			t.Errorf("%s: key %s missing after the fix", h, k)
			continue
		}
		for n, line := range vals {
			if got[n] != line {
				t.Errorf("%s: %s value %q: got %q, want %q", h, k, n, got[n], line)
			}
		}
		for n := range got {
			if _, ok := vals[n]; !ok {
				t.Errorf("%s: %s: unexpected value %q", h, k, n)
			}
		}
	}
	for k := range after {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected key %s after the fix", h, k)
		}
	}
}

// expectedRegistry applies the plan's registry actions to an export.
func expectedRegistry(before regExport, acts []FixAction, hiveName string) regExport {
	want := regExport{}
	for k, vs := range before {
		m := map[string]string{}
		for n, l := range vs {
			m[n] = l
		}
		want[k] = m
	}
	for _, a := range acts {
		if !strings.EqualFold(a.Hive, hiveName) {
			continue
		}
		k := strings.ToLower(`\` + a.Key)
		switch a.Op {
		case "delete-key":
			for kk := range want {
				if kk == k || strings.HasPrefix(kk, k+`\`) {
					delete(want, kk)
				}
			}
		case "delete-value":
			delete(want[k], strings.ToLower(a.Value))
		case "set":
			line := ""
			switch a.Type {
			case "REG_DWORD":
				line = fmt.Sprintf(`"%s"=dword:%08x`, a.Value, mustAtoi(a.New))
			case "REG_BINARY":
				data := WinHTTPDirect()
				if strings.EqualFold(a.Value, "Security") {
					// A service descriptor: the old one with the
					// documented DACL (Samba checks that DACL in
					// TestFixToolDamage).
					old, _ := hex.DecodeString(strings.ReplaceAll(strings.TrimPrefix(before[k][strings.ToLower(a.Value)], `"Security"=hex(3):`), ",", ""))
					data, _, _ = restoreServiceDACL(old, documentedUpdateDACL)
				}
				line = fmt.Sprintf(`"%s"=hex(3):%s`, a.Value, strings.ReplaceAll(hexBytes(data), " ", ","))
			case "REG_EXPAND_SZ":
				line = fmt.Sprintf(`"%s"=hex(2):%s`, a.Value, strings.ReplaceAll(hexBytes(encodeUTF16Z(a.New)), " ", ","))
			}
			want[k][strings.ToLower(a.Value)] = line
		}
	}
	return want
}

func mustAtoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// mountedTree mounts the volume read-only with ntfs-3g (through a
// read-only loop device) and returns the sha256 of every file under roots.
// It returns nil (after a loud skip outside CI) without root or ntfs-3g.
func mountedTree(t *testing.T, img string, v image.Volume, roots []string) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		testutil.Unavailable(t, "ntfs-3g mount needs root")
		return nil
	}
	testutil.RequireTool(t, "ntfs-3g")
	testutil.RequireTool(t, "losetup")
	loop := strings.TrimSpace(string(testutil.Run(t, "losetup", "-r", "-f", "--show", "-o", fmt.Sprint(v.Offset), "--sizelimit", fmt.Sprint(v.Size), img)))
	defer exec.Command("losetup", "-d", loop).Run()
	mnt := t.TempDir()
	testutil.Run(t, "ntfs-3g", "-o", "ro", loop, mnt)
	defer func() {
		if err := exec.Command("fusermount", "-u", mnt).Run(); err != nil {
			exec.Command("umount", mnt).Run()
		}
	}()
	out := map[string]string{}
	for _, r := range roots {
		filepath.WalkDir(filepath.Join(mnt, r), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Errorf("ntfs-3g: %s: %v", p, err)
				return nil
			}
			if d.Type().IsRegular() {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Errorf("ntfs-3g: %v", err)
					return nil
				}
				s := sha256.Sum256(b)
				rel, _ := filepath.Rel(mnt, p)
				out[filepath.ToSlash(rel)] = hex.EncodeToString(s[:])
			}
			return nil
		})
	}
	return out
}
