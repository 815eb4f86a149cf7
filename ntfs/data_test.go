package ntfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestDataWrites edits files in place (resident and not, within and beyond
// the allocation, resident data growing out of its record, shrinking) and
// after every commit compares each file with the expected bytes through an
// ntfs-3g mount and sleuthkit's icat, and runs Check --all (which checks
// cluster ownership against $Bitmap).
func TestDataWrites(t *testing.T) {
	for _, geo := range [][]string{{"-s", "512", "-c", "4096"}, {"-s", "512", "-c", "1024"}} {
		t.Run(geo[3], func(t *testing.T) {
			v := wtMakeVolume(t, 64<<20, geo...)
			mp, unmount := wtMount(t, v.path, false)
			r := rand.New(rand.NewSource(5))
			want := map[string][]byte{
				"small.txt":     []byte("127.0.0.1 localhost\n"),
				"dir/big.bin":   wtRand(r, 100000),
				"dir/other.bin": wtRand(r, 9000),
			}
			os.Mkdir(filepath.Join(mp, "dir"), 0o755)
			for n, b := range want {
				if err := os.WriteFile(filepath.Join(mp, n), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			unmount()
			w := wtWriter(t, v.path)
			type op struct {
				file  string
				off   int64
				data  []byte
				trunc int64 // >= 0: truncate instead
			}
			ops := []op{
				{"small.txt", 0, []byte("10.0.0.1 "), -1},                    // resident overwrite
				{"small.txt", 20, []byte("more resident\n"), -1},             // resident growth
				{"small.txt", 30, wtRand(r, 3000), -1},                       // out of the record
				{"small.txt", 5000, []byte("past the initialized size"), -1}, // zero gap, beyond allocation
				{"dir/big.bin", 4000, wtRand(r, 10000), -1},                  // overwrite across clusters
				{"dir/big.bin", 0, nil, 150000},                              // grow beyond the allocation
				{"dir/big.bin", 149990, wtRand(r, 20), -1},                   // write at the new end
				{"dir/big.bin", 0, nil, 5000},                                // shrink, freeing clusters
				{"dir/other.bin", 9000, wtRand(r, 300000), -1},               // append, allocating
				{"dir/other.bin", 0, nil, 0},                                 // empty
			}
			for i, o := range ops {
				f, err := w.OpenData(o.file)
				if err != nil {
					t.Fatal(err)
				}
				cur := want[o.file]
				if o.trunc >= 0 {
					err = f.Truncate(o.trunc)
					if o.trunc <= int64(len(cur)) {
						cur = cur[:o.trunc]
					} else {
						cur = append(cur, make([]byte, o.trunc-int64(len(cur)))...)
					}
				} else {
					_, err = f.WriteAt(o.data, o.off)
					if end := o.off + int64(len(o.data)); end > int64(len(cur)) {
						cur = append(cur, make([]byte, end-int64(len(cur)))...)
					}
					copy(cur[o.off:], o.data)
				}
				if err != nil {
					t.Fatalf("op %d: %v", i, err)
				}
				got := make([]byte, len(cur))
				if n, err := f.ReadAt(got, 0); n != len(cur) || !bytes.Equal(got, cur) {
					t.Fatalf("op %d: staged read %d bytes (%v), differs", i, n, err)
				}
				plan, err := f.Plan()
				if err != nil {
					t.Fatal(err)
				}
				wrote, err := f.Commit()
				if err != nil {
					t.Fatalf("op %d: commit: %v", i, err)
				}
				if len(plan) != len(wrote) {
					t.Errorf("op %d: plan %v, wrote %v", i, plan, wrote)
				}
				want[o.file] = cur
				wtVerifyData(t, v.path, want)
				if t.Failed() {
					t.FailNow()
				}
			}
		})
	}
}

func wtRand(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func wtVerifyData(t *testing.T, img string, want map[string][]byte) {
	t.Helper()
	wtCheckAll(t, img)
	mp, unmount := wtMount(t, img, true)
	defer unmount()
	for n, b := range want {
		got, err := os.ReadFile(filepath.Join(mp, n))
		if err != nil {
			t.Errorf("ntfs-3g: %s: %v", n, err)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("ntfs-3g: %s: %d bytes, want %d (or contents differ)", n, len(got), len(b))
		}
		st, _ := os.Stat(filepath.Join(mp, n))
		if st.Size() != int64(len(b)) {
			t.Errorf("ntfs-3g: %s: size %d, want %d", n, st.Size(), len(b))
		}
	}
	// icat reads the data by inode, with its own run list decoding.
	testutil.RequireTool(t, "icat")
	f := wtFile(t, img)
	st, _ := f.Stat()
	w, err := OpenReadOnly(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for n, b := range want {
		nums, err := w.begin().resolve(n)
		if err != nil {
			t.Fatal(err)
		}
		got := testutil.Run(t, "icat", img, fmt.Sprint(nums[len(nums)-1]))
		if !bytes.Equal(got, b) {
			t.Errorf("icat: %s: %d bytes, want %d (or contents differ)", n, len(got), len(b))
		}
		checked += len(got)
	}
	if checked == 0 && len(want) > 0 {
		t.Log("all files empty")
	}
}

func TestDataRefusals(t *testing.T) {
	v := wtMakeVolume(t, 32<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	os.WriteFile(filepath.Join(mp, "f"), []byte("x"), 0o644)
	os.Mkdir(filepath.Join(mp, "d"), 0o755)
	unmount()
	w := wtWriter(t, v.path)
	if _, err := w.OpenData("d"); err == nil {
		t.Error("OpenData on a directory succeeded")
	}
	if _, err := w.OpenData("$MFT"); err == nil {
		t.Error("OpenData on $MFT succeeded")
	}
	if _, err := w.OpenData("missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenData on a missing file: %v", err)
	}
}

// TestDataSparseAndCompressed: writes into a sparse hole and any write to
// a compressed file are refused with ErrUnsupportedData; writes to the
// allocated part of a sparse file work.
func TestDataSparseAndCompressed(t *testing.T) {
	testutil.RequireTool(t, "setfattr")
	v := wtMakeVolume(t, 64<<20, "-s", "512", "-c", "4096")
	mp, unmount := wtMount(t, v.path, false)
	sp, err := os.Create(filepath.Join(mp, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.WriteAt([]byte("end"), 1<<20); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	os.Mkdir(filepath.Join(mp, "z"), 0o755)
	// FILE_ATTRIBUTE_COMPRESSED on the directory: new files are compressed.
	compressed := false
	if err := exec.Command("setfattr", "-n", "system.ntfs_attrib_be", "-v", "0x00000800", filepath.Join(mp, "z")).Run(); err == nil {
		if err := os.WriteFile(filepath.Join(mp, "z", "c"), bytes.Repeat([]byte("abc"), 20000), 0o644); err == nil {
			compressed = true
		}
	}
	unmount()
	w := wtWriter(t, v.path)
	f, err := w.OpenData("sparse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("x"), 10); !errors.Is(err, ErrUnsupportedData) {
		t.Errorf("write into a hole: %v, want ErrUnsupportedData", err)
	}
	if err := f.Discard(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("END"), 1<<20); err != nil {
		t.Fatalf("write to the allocated end of a sparse file: %v", err)
	}
	if _, err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, 1<<20), "END"...)
	wtVerifyData(t, v.path, map[string][]byte{"sparse": want})
	if !compressed {
		t.Log("ntfs-3g made no compressed file here; compressed refusal not exercised")
		return
	}
	if _, err := w.OpenData("z/c"); !errors.Is(err, ErrUnsupportedData) {
		t.Errorf("OpenData on a compressed file: %v, want ErrUnsupportedData", err)
	}
}

// TestDataRandom: many small random writes and resizes staged together (as
// a hive editor does), committed in a few batches; after each batch the
// file equals the model through ntfs-3g and icat, and Check --all passes.
func TestDataRandom(t *testing.T) {
	v := wtMakeVolume(t, 64<<20, "-s", "512", "-c", "1024")
	mp, unmount := wtMount(t, v.path, false)
	r := rand.New(rand.NewSource(21))
	cur := wtRand(r, 70000)
	if err := os.WriteFile(filepath.Join(mp, "hive"), cur, 0o644); err != nil {
		t.Fatal(err)
	}
	unmount()
	w := wtWriter(t, v.path)
	for batch := 0; batch < 4; batch++ {
		f, err := w.OpenData("hive")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 400; i++ {
			switch r.Intn(20) {
			case 0:
				n := int64(r.Intn(200000))
				if err := f.Truncate(n); err != nil {
					t.Fatal(err)
				}
				if n <= int64(len(cur)) {
					cur = cur[:n]
				} else {
					cur = append(cur, make([]byte, n-int64(len(cur)))...)
				}
			default:
				off := int64(r.Intn(len(cur) + 5000))
				p := wtRand(r, 1+r.Intn(600))
				if _, err := f.WriteAt(p, off); err != nil {
					t.Fatal(err)
				}
				if end := off + int64(len(p)); end > int64(len(cur)) {
					cur = append(cur, make([]byte, end-int64(len(cur)))...)
				}
				copy(cur[off:], p)
			}
			if i%50 == 0 {
				got := make([]byte, len(cur))
				if n, _ := f.ReadAt(got, 0); n != len(cur) || !bytes.Equal(got, cur) {
					t.Fatalf("batch %d op %d: staged content differs", batch, i)
				}
			}
		}
		if _, err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		wtVerifyData(t, v.path, map[string][]byte{"hive": cur})
		if t.Failed() {
			t.FailNow()
		}
	}
}
