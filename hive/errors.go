package hive

import (
	"errors"
	"fmt"
)

// Sentinel errors. The reader wraps them in *CellError and *KeyError, which
// say where; test for them with errors.Is.
var (
	// ErrNotFound reports a key or value name that does not exist.
	ErrNotFound = errors.New("not found")

	// ErrCellOffset reports a reference to an offset where no allocated
	// cell starts: nil where a cell is required, outside the hive bins,
	// misaligned, inside a bin header, or a free cell.
	ErrCellOffset = errors.New("no allocated cell at this offset")

	// ErrRecord reports a record whose signature is wrong or whose own
	// length fields do not fit in its cell.
	ErrRecord = errors.New("malformed record")

	// ErrBin reports a hive bin whose header is damaged or whose cells do
	// not tile it.
	ErrBin = errors.New("bad hive bin")

	// ErrTruncated reports a file shorter than its base block says.
	ErrTruncated = errors.New("file truncated")

	// ErrOrder reports subkeys that are not in the order Windows keeps
	// them (by name, upcased code unit by code unit).
	ErrOrder = errors.New("subkeys out of order")

	// ErrDuplicate reports two subkeys or two values of one key with the
	// same name (compared case-insensitively).
	ErrDuplicate = errors.New("duplicate name")

	// ErrParent reports a key node listed under a key whose offset is not
	// the node's parent field.
	ErrParent = errors.New("parent mismatch")

	// ErrLoop reports a structure that references itself (a cycle in the
	// tree, a list leaf used twice).
	ErrLoop = errors.New("loop")

	// ErrType reports a value read as a type its data does not have
	// (Text of a REG_DWORD, Uint32 of 3 bytes).
	ErrType = errors.New("wrong value type")

	// ErrDirty reports a dirty hive that could not be recovered.
	ErrDirty = errors.New("dirty hive")
)

// CellError describes a damaged or unreadable cell: which structure was
// being read (Struct: "key node", "subkey list", "value list", "value",
// "value data", "security", "class name", "big data", "hive bin") and at which cell
// offset (relative to the first hive bin, as in the file's own references).
type CellError struct {
	Offset uint32
	Struct string
	Err    error
}

// Error renders "<struct> at 0x<offset>: <problem>".
func (e *CellError) Error() string {
	return fmt.Sprintf("%s at 0x%x: %v", e.Struct, e.Offset, e.Err)
}

// Unwrap returns the underlying error (a sentinel such as ErrCellOffset).
func (e *CellError) Unwrap() error { return e.Err }

// KeyError names the key (path below the root, `\`-separated) that was being
// read when Err happened. A value error carries the value's name as well.
type KeyError struct {
	Path  string
	Value string // "" unless the error concerns a value of the key
	Err   error
}

// Error renders `hive: key "<path>": <problem>` (and the value's name).
func (e *KeyError) Error() string {
	k := fmt.Sprintf("key %q", e.Path)
	if e.Path == "" {
		k = "root key"
	}
	if e.Value != "" {
		return fmt.Sprintf("hive: %s: value %q: %v", k, e.Value, e.Err)
	}
	return fmt.Sprintf("hive: %s: %v", k, e.Err)
}

// Unwrap returns the underlying error (often a *CellError).
func (e *KeyError) Unwrap() error { return e.Err }

// cellErr builds a *CellError; format and args describe the problem and
// wrap kind (one of the sentinels).
func cellErr(off uint32, what string, kind error, format string, args ...any) error {
	return &CellError{Offset: off, Struct: what, Err: fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)}
}
