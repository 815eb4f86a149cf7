package ntfs

import (
	"errors"
	"fmt"
	"io/fs"
)

// rdHiberHeaderSize is how much of hiberfil.sys decides: ntfs-3g reads this
// many bytes and treats a shorter file as a hibernated non-system volume.
const rdHiberHeaderSize = 4096

// checkHiberfil looks for hiberfil.sys in the root directory.
func (v *Volume) checkHiberfil() error {
	s := v.safety
	f, err := v.FS().Open("hiberfil.sys")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	ra, ok := f.(interface {
		ReadAt([]byte, int64) (int, error)
	})
	if !ok {
		return errors.New("hiberfil.sys is not a regular file")
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return nil
	}
	buf := make([]byte, rdHiberHeaderSize)
	n, err := ra.ReadAt(buf, 0)
	if err != nil && n != int(min(st.Size(), rdHiberHeaderSize)) {
		return err
	}
	s.Hibernation = HiberState(buf[:n])
	switch s.Hibernation {
	case "":
	case "short":
		s.refuse(RefusalHibernated, fmt.Sprintf("hiberfil.sys is only %d bytes (under 4 KiB): Windows treats this volume as part of a hibernated system", n), rdAdviceShutdown)
	default:
		s.refuse(RefusalHibernated, fmt.Sprintf("hiberfil.sys starts with %q: Windows is hibernated (or shut down with Fast Startup) and will resume with its own view of this volume", s.Hibernation), rdAdviceShutdown)
	}
	return nil
}

// HiberState classifies the first bytes of hiberfil.sys: "short" when
// fewer than 4096 bytes exist, the signature when it is hibr/HIBR/wake/WAKE
// (a hibernation image in use or being resumed), else "" (the header is
// zeroed after a resume or a full shutdown).
func HiberState(head []byte) string {
	if len(head) < rdHiberHeaderSize {
		return "short"
	}
	switch sig := string(head[:4]); sig {
	case "hibr", "HIBR", "wake", "WAKE":
		return sig
	}
	return ""
}
