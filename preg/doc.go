// Package preg reads and writes Group Policy registry policy files
// (Registry.pol, "PReg" version 1), as Microsoft's "Registry Policy File
// Format" describes them:
//
//	header: the four bytes "PReg", then the u32 version 1 (little-endian);
//	body:   entries, each [key;value;type;size;data] where '[', ';' and ']'
//	        are UTF-16LE characters, key and value are NUL-terminated
//	        UTF-16LE strings, type and size are u32 little-endian and data
//	        is size bytes.
//
// Value names starting with "**" are instructions to the Group Policy
// client ("**del.NAME" deletes NAME, "**delvals." deletes every value of
// the key, ...), not values.
//
// The reader keeps every entry's exact bytes, so that a filtered file keeps
// the entries it does not drop byte for byte.
package preg
