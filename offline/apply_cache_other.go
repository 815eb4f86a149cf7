//go:build !(linux && (amd64 || arm64))

package offline

// dropCache does nothing where posix_fadvise is not available: the
// re-read still uses new objects, so no cache of the fix itself survives.
func dropCache(string) {}
