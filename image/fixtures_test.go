package image

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// TestWindowsVolumes opens NTFS volumes made by Windows (the shared
// fixtures): on their own, then placed in a GPT made by sgdisk and in a
// fixed VHD made by qemu-img, where the partition must read back the
// volume's exact bytes.
func TestWindowsVolumes(t *testing.T) {
	tests := []struct {
		fixture, member string
		format          string
		warning         bool
	}{
		// Windows 10; Windows made it as a fixed VHD (its footer is still
		// there, with a disk size larger than the data the file holds).
		{"ntfs/charlie.dd.bz2", "", FormatVHDFixed, true},
		{"ntfs/7-undel-ntfs.zip", "7-ntfs-undel.dd", FormatRaw, false}, // Windows XP
	}
	for _, tc := range tests {
		t.Run(filepath.Base(tc.fixture), func(t *testing.T) {
			vol := testutil.Decompress(t, testutil.SharedFixture(t, tc.fixture), tc.member)
			volBytes, err := os.ReadFile(vol)
			if err != nil {
				t.Fatal(err)
			}
			tg, err := Open(vol, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.format == FormatVHDFixed {
				volBytes = volBytes[:len(volBytes)-512]
			}
			want := Volume{Size: int64(len(volBytes)), Type: "volume", Content: ContentNTFS}
			if tg.Kind != KindVolume || tg.Format != tc.format || len(tg.Volumes) != 1 || tg.Volumes[0] != want || (len(tg.Warnings) != 0) != tc.warning {
				t.Errorf("bare volume: %+v", tg)
			}
			tg.Close()
			if err := os.WriteFile(vol, volBytes, 0o644); err != nil {
				t.Fatal(err)
			}

			// The volume as partition 1 of a GPT disk, 1 MiB in.
			size := int64(len(volBytes))
			sectors := (size + 511) / 512
			disk := sparseFile(t, "disk.img", (2048+sectors+2048)*512)
			testutil.Run(t, testutil.RequireTool(t, "sgdisk"), "-n", "1:2048:+"+strconv.FormatInt(sectors, 10), "-t", "1:0700", disk)
			copyInto(t, disk, vol, 2048*512)
			for _, p := range []string{disk, toFixedVHD(t, disk)} {
				tg, err := Open(p, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer tg.Close()
				if len(tg.Volumes) != 1 || tg.Volumes[0].Content != ContentNTFS || tg.Volumes[0].Offset != 2048*512 {
					t.Fatalf("%s: %+v", p, tg.Volumes)
				}
				got, err := io.ReadAll(io.LimitReader(tg.ReaderAt(tg.Volumes[0]), size))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, volBytes) {
					t.Errorf("%s: partition 1 does not read back the volume's bytes", p)
				}
			}
		})
	}
}

// TestHiveFixturesRefused points Open at real registry hives: each must be
// refused as a hive, with the advice to use `wuoffline reg`.
func TestHiveFixturesRefused(t *testing.T) {
	for _, f := range []string{"hives/hivex/minimal", "hives/regipy/SYSTEM.xz"} {
		p := testutil.Decompress(t, testutil.SharedFixture(t, f), "")
		_, err := Open(p, Options{})
		var ue *UnsupportedError
		if !errors.As(err, &ue) || ue.Format != FormatRegf {
			t.Errorf("%s: %v, want an UnsupportedError for regf", f, err)
		}
	}
}

// TestBuiltTestImages opens the project's built test images
// (testimages/data): each is a readable disk or volume holding the
// Windows volume, with no damaged table entry.
func TestBuiltTestImages(t *testing.T) {
	tests := []struct {
		name    string
		table   string
		sector  int
		content string
	}{
		{"healthy-gpt.img", "gpt", 512, ContentNTFS},
		{"broken-gpt.img", "gpt", 512, ContentNTFS},
		{"broken-mbr.img", "mbr", 512, ContentNTFS},
		{"broken-4kn.img", "gpt", 4096, ContentNTFS},
		{"broken-volume.img", "", 0, ContentNTFS},
		{"refuse-bitlocker.img", "", -1, ContentBitLocker},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(testutil.RepoRoot(t), "testimages", "data", tc.name+".gz")
			if _, err := os.Stat(src); err != nil {
				testutil.Unavailable(t, "test image %s not built yet (make testimages): %v", tc.name, err)
			}
			tg, err := Open(testutil.TestImage(t, tc.name), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer tg.Close()
			if tc.sector >= 0 && (tg.Table != tc.table || tg.SectorSize != tc.sector) {
				t.Errorf("table %q with %d-byte sectors, want %q, %d", tg.Table, tg.SectorSize, tc.table, tc.sector)
			}
			found := false
			for _, v := range tg.Volumes {
				if v.Damaged != "" {
					t.Errorf("partition %d damaged: %s", v.Index, v.Damaged)
				}
				found = found || v.Content == tc.content
			}
			if !found {
				t.Errorf("no %s volume in %+v", tc.content, tg.Volumes)
			}
		})
	}
}
