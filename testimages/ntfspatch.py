#!/usr/bin/env python3
"""Patch one NTFS state flag in a bare volume image, for the refusal variants.

Usage: ntfspatch.py dirty IMAGE        set the $Volume dirty bit (0x0001)
       ntfspatch.py logfile-clean IMAGE  give an "empty" (all 0xFF) $LogFile the two
                                       clean version 1.1 restart pages Windows leaves
       ntfspatch.py logfile-v2 IMAGE   make both $LogFile restart pages say version 2.0
                                       (what Windows 8+ leaves after a Fast Startup shutdown)

mkntfs and ntfs-3g leave $LogFile all 0xFF ("empty"); Windows leaves restart
pages.  No NTFS tool writes those or sets these flags on purpose, so this script does the few byte edits
itself; build.sh then checks the result with ntfsinfo and an ntfs-3g
read-write mount attempt (independent parsers).  Layout facts used (ntfs-3g
layout.h): boot sector fields at 0x0B, 0x0D, 0x30, 0x38, 0x40; multi-sector
records with an update sequence array (offset @4, count @6) whose entries
replace the last two bytes of every 512-byte stride; attribute headers (type
@0, length @4, non-resident @8, resident value offset @0x14, run list offset
@0x20); $VOLUME_INFORMATION flags @0x0A; restart page minor version @0x1A,
major @0x1C.
"""

import struct
import sys


def boot(f):
    f.seek(0)
    b = f.read(512)
    if b[3:11] != b"NTFS    ":
        sys.exit("ntfspatch: not an NTFS boot sector")
    bps = struct.unpack_from("<H", b, 0x0B)[0]
    spc = b[0x0D]
    if spc > 128:
        spc = 1 << (256 - spc)
    cluster = bps * spc
    mft, mirr = struct.unpack_from("<QQ", b, 0x30)
    c = struct.unpack_from("<b", b, 0x40)[0]
    rec = cluster * c if c > 0 else 1 << -c
    return cluster, mft, mirr, rec


def read_record(f, off, size):
    f.seek(off)
    raw = bytearray(f.read(size))
    if raw[:4] != b"FILE":
        sys.exit("ntfspatch: no FILE record at %#x" % off)
    usa_ofs, usa_cnt = struct.unpack_from("<HH", raw, 4)
    usn = raw[usa_ofs:usa_ofs + 2]
    fixed = bytearray(raw)
    for i in range(1, usa_cnt):
        end = i * 512
        if raw[end - 2:end] != usn:
            sys.exit("ntfspatch: torn record at %#x" % off)
        fixed[end - 2:end] = raw[usa_ofs + 2 * i:usa_ofs + 2 * i + 2]
    return fixed, usa_ofs, usa_cnt, bytes(usn)


def write_record(f, off, fixed, usa_ofs, usa_cnt, usn):
    raw = bytearray(fixed)
    for i in range(1, usa_cnt):
        end = i * 512
        raw[usa_ofs + 2 * i:usa_ofs + 2 * i + 2] = fixed[end - 2:end]
        raw[end - 2:end] = usn
    raw[usa_ofs:usa_ofs + 2] = usn
    f.seek(off)
    f.write(raw)


def find_attr(rec, atype):
    off = struct.unpack_from("<H", rec, 0x14)[0]
    while off + 8 <= len(rec):
        t, ln = struct.unpack_from("<II", rec, off)
        if t == 0xFFFFFFFF or ln == 0:
            break
        if t == atype:
            return off
        off += ln
    sys.exit("ntfspatch: attribute %#x not found" % atype)


def set_dirty(f):
    cluster, mft, mirr, rsize = boot(f)
    # $Volume is record 3, mirrored in $MFTMirr: patch both copies alike.
    for base in (mft, mirr):
        off = base * cluster + 3 * rsize
        rec, uo, uc, usn = read_record(f, off, rsize)
        a = find_attr(rec, 0x70)
        voff = struct.unpack_from("<H", rec, a + 0x14)[0]
        p = a + voff + 0x0A
        flags = struct.unpack_from("<H", rec, p)[0] | 0x0001
        struct.pack_into("<H", rec, p, flags)
        write_record(f, off, rec, uo, uc, usn)
    print("ntfspatch: $Volume flags now %#06x" % flags)


def logfile(f, v2):
    cluster, mft, mirr, rsize = boot(f)
    rec, *_ = read_record(f, mft * cluster + 2 * rsize, rsize)  # $LogFile is record 2
    a = find_attr(rec, 0x80)
    if rec[a + 8] != 1:
        sys.exit("ntfspatch: $LogFile $DATA is resident")
    rl = a + struct.unpack_from("<H", rec, a + 0x20)[0]
    hdr = rec[rl]
    lsz, osz = hdr & 0x0F, hdr >> 4
    lcn = int.from_bytes(rec[rl + 1 + lsz:rl + 1 + lsz + osz], "little", signed=True)
    start = lcn * cluster
    f.seek(start)
    first = f.read(4096)
    if first == b"\xff" * 4096:
        # mkntfs and ntfs-3g leave $LogFile "empty" (all 0xFF, which ntfs-3g
        # accepts as clean): write the two restart pages a clean 1.1 log has.
        size = logfile_size(rec, a)
        for p in (start, start + 4096):
            f.seek(p)
            f.write(restart_page(size))
    f.seek(start)
    page0 = f.read(0x20)
    if page0[:4] != b"RSTR":
        sys.exit("ntfspatch: no RSTR page at %#x" % start)
    sys_page = struct.unpack_from("<I", page0, 0x10)[0]
    if not v2:
        print("ntfspatch: $LogFile restart pages at %#x and %#x, version 1.1, clean" % (start, start + sys_page))
        return
    for p in (start, start + sys_page):
        f.seek(p)
        h = f.read(0x20)
        if h[:4] != b"RSTR":
            sys.exit("ntfspatch: no RSTR page at %#x" % p)
        f.seek(p + 0x1A)
        f.write(struct.pack("<hh", 0, 2))  # minor 0, major 2
    print("ntfspatch: $LogFile restart pages at %#x and %#x now version 2.0" % (start, start + sys_page))


def logfile_size(rec, a):
    return struct.unpack_from("<Q", rec, a + 0x30)[0]  # non-resident data size


def restart_page(file_size):
    """A clean restart page (layout.h RESTART_PAGE_HEADER + RESTART_AREA + one
    LOG_CLIENT_RECORD "NTFS"), 4096 bytes, version 1.1, fixups applied."""
    page = bytearray(4096)
    usa_ofs, usa_cnt = 0x1E, 1 + 4096 // 512
    page[0:4] = b"RSTR"
    struct.pack_into("<HHQIIHhh", page, 4, usa_ofs, usa_cnt, 0, 4096, 4096, 0x30, 1, 1)
    ra = 0x30
    bits = file_size.bit_length()  # ntfs-3g: 67 - (number of bits in file_size)
    struct.pack_into("<QHHHHIHHQIHHI", page, ra,
                     0,            # current_lsn
                     1,            # log_clients
                     0xFFFF,       # client_free_list: none
                     0xFFFF,       # client_in_use_list: none (no client => clean)
                     0x0002,       # flags: RESTART_VOLUME_IS_CLEAN
                     67 - bits,    # seq_number_bits
                     0x30 + 0xA0,  # restart_area_length
                     0x30,         # client_array_offset
                     file_size,    # file_size
                     0,            # last_lsn_data_length
                     0x30,         # log_record_header_length
                     0x40,         # log_page_data_offset
                     0)            # restart_log_open_count
    cl = ra + 0x30
    struct.pack_into("<QQHHH", page, cl, 0, 0, 0xFFFF, 0xFFFF, 0)
    struct.pack_into("<I", page, cl + 0x1C, 8)
    page[cl + 0x20:cl + 0x28] = "NTFS".encode("utf-16-le")
    usn = struct.pack("<H", 1)
    page[usa_ofs:usa_ofs + 2] = usn
    for i in range(1, usa_cnt):
        end = i * 512
        page[usa_ofs + 2 * i:usa_ofs + 2 * i + 2] = page[end - 2:end]
        page[end - 2:end] = usn
    return bytes(page)


def main():
    op, path = sys.argv[1:3]
    with open(path, "r+b") as f:
        if op == "dirty":
            set_dirty(f)
        elif op == "logfile-clean":
            logfile(f, False)
        elif op == "logfile-v2":
            logfile(f, True)
        else:
            sys.exit("ntfspatch: unknown operation " + op)


if __name__ == "__main__":
    main()
