#!/usr/bin/env python3
"""Age a freshly made NTFS volume mounted with ntfs-3g (build-aged.sh).

Usage: age.py MOUNTPOINT KIND HIVE   (env WINSXS_ENTRIES, BIG_ENTRIES, TREE)

KIND install copies the plain tree TREE (the broken test images' Windows
installation, without its SOFTWARE hive) onto the fresh volume first, with
the DOS names mktree.py gives it, and writes HIVE as its SOFTWARE hive once
the volume is aged.

ntfs-3g allocates clusters next-fit from where it last allocated, so a
file written on a fresh volume is contiguous. To fragment the way an old
disk is fragmented, this fills the volume with one-cluster pad files and a
filler taking every free cluster, deletes every other pad (one-cluster
holes), and only then writes the hive and grows WinSxS: they can only land
in the holes.
"""

import errno
import os
import shutil
import sys

root, kind, hive = sys.argv[1], sys.argv[2], sys.argv[3]
tree = os.environ.get("TREE", "")
winsxs_n = int(os.environ.get("WINSXS_ENTRIES", "3000"))
big_n = int(os.environ.get("BIG_ENTRIES", "50000"))
J = os.path.join
CL = 4096
sysdir, cfg, sxs = J(root, "Windows/System32"), J(root, "Windows/System32/config"), J(root, "Windows/WinSxS")
pad, tmp = J(root, "ProgramData/pad"), J(root, "ProgramData/tmp")
for d in (sysdir, cfg, sxs, J(root, "Users"), pad, tmp):
    os.makedirs(d, exist_ok=True)
src = open(hive, "rb").read()


def touch(p, data=b""):
    with open(p, "wb") as f:
        f.write(data)


def copy_tree(src, dst, skip):
    """Copy src onto the volume in sorted name order (ntfs-3g allocates
    records in creation order: a fixed order gives the same volume), all but
    the relative paths in skip."""
    for d, dirs, files in os.walk(src):
        dirs.sort()
        rel = os.path.relpath(d, src)
        out = dst if rel == "." else J(dst, rel)
        for n in sorted(files):
            if os.path.normpath(J(rel, n)) not in skip:
                shutil.copyfile(J(d, n), J(out, n))
        for n in dirs:
            os.makedirs(J(out, n), exist_ok=True)


SOFTWARE_REL = "Windows/System32/config/SOFTWARE"
if kind == "install":
    # The installation goes on the fresh volume (contiguous), all but the
    # SOFTWARE hive, which is written into the holes below.
    copy_tree(tree, root, {SOFTWARE_REL})

if kind == "big":
    # The big directory needs no fragmentation: made first, in one go.
    big = J(sxs, "Manifests")
    os.mkdir(big)
    for i in range(big_n):
        touch(J(big, "x86_microsoft-windows-m%06d_31bf3856ad364e35_10.0.19041.1_none.manifest" % i))

# 1. Grow $MFT now (empty files, deleted below) so that the records the
#    WinSxS entries need later exist without $MFT taking holes.
for i in range(winsxs_n + 200):
    touch(J(tmp, "%06d" % i))
# 2. One-cluster pads, then a filler taking every free cluster.
holes = len(src) // CL + winsxs_n // 4 + 300
for i in range(2 * holes):
    touch(J(pad, "%06d" % i), b"\xaa" * CL)
fd = os.open(J(root, "ProgramData/filler.bin"), os.O_WRONLY | os.O_CREAT, 0o644)
for chunk in (1 << 20, CL):
    while True:
        try:
            os.write(fd, b"\xbb" * chunk)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            break
os.close(fd)
for i in range(winsxs_n + 200):
    os.remove(J(tmp, "%06d" % i))
for i in range(0, 2 * holes, 2):
    os.remove(J(pad, "%06d" % i))

# 3. The hive lands in one-cluster holes: one run per cluster.
touch(J(cfg, "SOFTWARE"), src)
if kind != "install":  # the installation has its own (empty) logs
    for n in ("SOFTWARE.LOG1", "SOFTWARE.LOG2"):
        touch(J(cfg, n))

# 4. WinSxS: component directories and manifests, whose INDX blocks land in
#    holes: the index allocation gets one run per block and moves to
#    extension records ($ATTRIBUTE_LIST).
arches = ["amd64", "x86", "wow64", "msil"]
names = []
for i in range(winsxs_n):
    comp = "%s_microsoft-windows-component-number-%05d_31bf3856ad364e35_10.0.19041.%d_none_%016x" % (
        arches[i % 4], i, 1000 + i % 977, (i * 0x9E3779B97F4A7C15) & (2**64 - 1))
    if i % 3 == 0:
        os.mkdir(J(sxs, comp))
        names.append(comp)
    else:
        touch(J(sxs, comp + ".manifest"), b"<assembly/>")
# Servicing logs beside pending.xml: short names that renames lengthen.
for i in range(40):
    touch(J(sxs, "cbs%02d.log" % i), b"log %d\n" % i)
if kind != "install":  # the installation's own pending.xml stays
    touch(J(sxs, "pending.xml"), b'<?xml version="1.0" encoding="utf-8"?>\n'
          b'<PendingTransaction Version="3.1" Identifier="aged">\n</PendingTransaction>\n')

# 5. System32 DLLs are hard links to component files, as servicing makes them.
for i, comp in enumerate(names[:40]):
    p = J(sxs, comp, "lib%03d.dll" % i)
    touch(p, b"MZ" + bytes(300))
    os.link(p, J(sysdir, "lib%03d.dll" % i))

# 6. Free space again for the writer: the filler and the other pads go.
os.remove(J(root, "ProgramData/filler.bin"))
for i in range(1, 2 * holes, 2):
    os.remove(J(pad, "%06d" % i))
os.rmdir(pad)
os.rmdir(tmp)

# 7. The installation's DOS names, as build.sh sets them (mktree.py's list;
#    set last: ntfs-3g drops a DOS name when the file is rewritten).
if kind == "install":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import mktree

    for rel, short in mktree.build("broken-win11", None, None, dry=True).dos:
        os.setxattr(J(root, rel), "system.ntfs_dos_name", short.encode(), follow_symlinks=False)
