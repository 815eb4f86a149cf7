// Package eventlog reads Windows XML event log files (.evtx), bounded:
// each record's provider, event id, time and data values.
//
// Format facts (libevtx documentation, "Windows XML Event Log (EVTX)
// format"; checked record for record against python-evtx on real
// Windows 10 logs):
//
//   - file header: 4096 bytes, "ElfFile\0"; then chunks of 65536 bytes,
//     each starting "ElfChnk\0" with a 512-byte header; records start at
//     chunk offset 512 and end at the chunk's free-space offset (header +48);
//   - record: u32 0x00002a2a, u32 size, u64 record id, FILETIME written,
//     Binary XML, u32 size copy;
//   - Binary XML: a token stream; names and template definitions are
//     referred to by chunk-relative offsets and are defined inline when
//     that offset lies after the referring token (the stream then goes on
//     past the definition);
//   - a record is usually StartOfStream + TemplateInstance: a template
//     (an XML fragment with substitution tokens) plus an array of typed
//     substitution values.
//
// Memory is bounded by one chunk and by the limits of Limits, never by a
// size a header declares.
package eventlog
