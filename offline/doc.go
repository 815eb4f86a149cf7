// Package offline knows the Windows installation on a volume that is not
// running: where it is, what version it is, and what the catalogue of
// repair-catalog.md says about it.
//
// Diagnose (and DiagnoseTarget for one TARGET) opens each target with
// package image, each NTFS volume with package ntfs (or a mounted
// directory with DirFS), finds every installation (a volume with
// Windows\System32\config\SYSTEM and SOFTWARE), opens its hives with
// package hive (a dirty hive is read in its recovered state, in memory)
// and runs every Check of Checks(). It never writes.
//
// Each Check is a small type with the catalogue id; its Result carries a
// Status (ok, problem, info, skipped, failed; fix adds fixed) and
// structured Evidence: the volume path or the hive, key and value, the old
// data and what fix would put instead, so that `wuoffline fix` can plan
// from the same types. Log evidence (CBS, Startup Repair, Windows Update,
// setup, DISM and the System event log) is read by bounded parsers: only
// the tail of a big log, only the last few matches.
//
// The Report is JSON-ready (SchemaVersion, docs/*.schema.json). Exit codes follow
// repair-catalog.md: 0 nothing to fix, 1 problems fix would repair,
// 3 fix would be refused for safety, 4 the target could not be read.
package offline
