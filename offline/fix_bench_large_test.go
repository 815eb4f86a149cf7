package offline

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wuoffline/wuoffline/hive"
	"github.com/wuoffline/wuoffline/internal/testutil"
)

// BenchmarkFixLarge compares `wuoffline fix` with the manual Linux route
// (ntfs-3g read-write mount, mv, a sed of hosts, hivexregedit --merge of the
// same registry changes, umount) on a 2 GiB volume holding 300,000 extra
// directory entries (100,000 of them in Windows\WinSxS, whose index the
// pending.xml rename changes) and a SOFTWARE hive inflated to about 50 MB.
// Building the volume takes a minute or two; it runs only with -bench.
func BenchmarkFixLarge(b *testing.B) {
	if testing.Short() {
		b.Skip("2 GiB volume: not in -short")
	}
	testutil.RequireRoot(b)
	for _, tool := range []string{"mkntfs", "ntfs-3g", "hivexregedit", "cp"} {
		testutil.RequireTool(b, tool)
	}
	dir := b.TempDir()
	img := filepath.Join(dir, "large.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, 2<<30); err != nil {
		b.Fatal(err)
	}
	testutil.Run(b, "mkntfs", "-F", "-f", "-q", "-L", "Windows", img)
	tree := fixExtractTree(b, "broken-tree.tar.gz")
	inflateHive(b, filepath.Join(tree, "Windows", "System32", "config", "SOFTWARE"), 50<<20)

	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	mount := func() {
		testutil.Run(b, "ntfs-3g", img, mnt)
	}
	umount := func() {
		if err := exec.Command("fusermount", "-u", mnt).Run(); err != nil {
			exec.Command("umount", mnt).Run()
		}
	}
	mount()
	b.Cleanup(umount)
	testutil.Run(b, "cp", "-a", tree+"/.", mnt+"/")
	start := time.Now()
	for i := 0; i < 100000; i++ {
		mustCreate(b, filepath.Join(mnt, "Windows", "WinSxS", fmt.Sprintf("amd64_microsoft-windows-bench_%06d.manifest", i)))
	}
	for i := 0; i < 200000; i++ {
		d := filepath.Join(mnt, "ProgramData", "Bench", fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			os.MkdirAll(d, 0o755)
		}
		mustCreate(b, filepath.Join(d, fmt.Sprintf("f%06d.dat", i)))
	}
	umount()
	b.Logf("volume built in %v", time.Since(start))
	pristine := img + ".pristine"
	testutil.Run(b, "cp", "--sparse=always", img, pristine)
	restore := func() { testutil.Run(b, "cp", "--sparse=always", pristine, img) }

	dry := FixTarget(img, FixOptions{DryRun: true})
	if dry.State != FixPlanned {
		b.Fatalf("dry run: %s %s %v", dry.State, dry.Error, dry.Refusals)
	}
	acts := dry.Volumes[0].Actions

	b.Run("wuoffline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			rep := FixTarget(img, FixOptions{})
			if rep.State != FixDone {
				b.Fatalf("fix: %s %s", rep.State, rep.Error)
			}
			b.StopTimer()
			b.ReportMetric(float64(rep.Volumes[0].FileBytes), "bytes-written")
			if rep.IO != nil {
				b.ReportMetric(float64(rep.IO.Opens), "opens")
				b.ReportMetric(float64(rep.IO.Reads), "reads")
				b.ReportMetric(float64(rep.IO.BytesRead)/(1<<20), "MiB-read")
			}
			if u := UndoTarget(img, UndoOptions{}); u.Exit != ExitOK {
				b.Fatalf("undo: %+v", u)
			}
			b.StartTimer()
		}
	})
	b.Run("manual-linux", func(b *testing.B) {
		regs := manualRegFiles(b, dir, acts)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			restore()
			b.StartTimer()
			mount()
			manualRoute(b, mnt, acts, regs)
			umount()
		}
		b.StopTimer()
		if p := defaultProblems(DiagnoseTarget(img, Options{})); len(p) > 0 {
			b.Errorf("the manual route left: %v", p)
		}
	})
}

// manualRoute makes the plan's changes through a read-write ntfs-3g mount
// at mnt, as an administrator would by hand: mv, a sed of hosts (and the
// Registry.pol and gpt.ini edits), and
// hivexregedit --merge of the registry changes (regs: manualRegFiles).
func manualRoute(b *testing.B, mnt string, acts []FixAction, regs map[string]string) {
	b.Helper()
	for _, a := range acts {
		switch a.Op {
		case "rename":
			if err := os.Rename(filepath.Join(mnt, winToSlash(a.Path)), filepath.Join(mnt, winToSlash(a.To))); err != nil {
				b.Fatal(err)
			}
		case "comment-out", "rewrite":
			// What `sed -i` (hosts) or a Registry.pol editor would do,
			// by the same rule as fix.
			p := filepath.Join(mnt, winToSlash(a.Path))
			data, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			out, _, err := (&plannedAction{FixAction: a}).rewrite(data)
			if err != nil {
				b.Fatal(err)
			}
			if out != nil {
				if err := os.WriteFile(p, out, 0o644); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for h, reg := range regs {
		testutil.Run(b, "hivexregedit", "--merge", "--prefix", `HKEY_LOCAL_MACHINE\`+h,
			filepath.Join(mnt, "Windows", "System32", "config", h), reg)
	}
}

func winToSlash(p string) string { return strings.ReplaceAll(p, `\`, "/") }

func mustCreate(b *testing.B, p string) {
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
}

// manualRegFiles writes, per hive, the .reg file hivexregedit --merge
// needs for the plan's registry changes.
func manualRegFiles(b *testing.B, dir string, acts []FixAction) map[string]string {
	var text = map[string]*strings.Builder{}
	for _, a := range acts {
		if a.Hive == "" {
			continue
		}
		h := strings.ToUpper(a.Hive)
		sb := text[h]
		if sb == nil {
			sb = &strings.Builder{}
			sb.WriteString("Windows Registry Editor Version 5.00\n\n")
			text[h] = sb
		}
		key := `HKEY_LOCAL_MACHINE\` + h
		if a.Key != "" {
			key += `\` + a.Key
		}
		switch a.Op {
		case "delete-key":
			fmt.Fprintf(sb, "[-%s]\n\n", key)
		case "delete-value":
			fmt.Fprintf(sb, "[%s]\n\"%s\"=-\n\n", key, a.Value)
		case "set":
			if a.Type == "REG_DWORD" {
				fmt.Fprintf(sb, "[%s]\n\"%s\"=dword:%08x\n\n", key, a.Value, mustAtoi(a.New))
			} else {
				fmt.Fprintf(sb, "[%s]\n\"%s\"=hex(3):%s\n\n", key, a.Value, strings.ReplaceAll(hexBytes(WinHTTPDirect()), " ", ","))
			}
		}
	}
	out := map[string]string{}
	for h, sb := range text {
		p := filepath.Join(dir, h+".reg")
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		out[h] = p
	}
	return out
}

// inflateHive grows a hive file to about size bytes with keys of binary
// values, through the hive editor.
func inflateHive(b *testing.B, p string, size int) {
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	m := &memFile{b: data}
	h, err := hive.Open(m, int64(len(m.b)))
	if err != nil {
		b.Fatal(err)
	}
	ed, err := hive.NewEditor(h, m, m.grow)
	if err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 1000)
	for i := 0; len(m.b)+i*1100 < size; i++ {
		k := fmt.Sprintf(`Classes\WuofflineBench\K%04d\S%03d`, i/1000, i%1000)
		if _, err := ed.CreateKey(k); err != nil {
			b.Fatal(err)
		}
		if err := ed.SetValue(k, "Data", hive.RegBinary, val); err != nil {
			b.Fatal(err)
		}
	}
	if err := ed.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(p, m.b, 0o644); err != nil {
		b.Fatal(err)
	}
}
