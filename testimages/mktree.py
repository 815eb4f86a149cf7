#!/usr/bin/env python3
"""Write the Windows volume's tree of a test image into a plain directory.

Usage: mktree.py PROFILE HIVEDIR DEST DOSNAMES

PROFILE is broken-win11, healthy-win11 or broken-win10 (as in mkhives.py);
HIVEDIR holds that profile's hives.  DEST must not exist.  DOSNAMES receives
one line per short name to set once the tree is on NTFS:
"relative/path<TAB>SHORTNAME" (build.sh applies them with
setfattr -n system.ntfs_dos_name).

Everything is derived from fixed strings and hashes: the output is the same
on every run.  What is planted where is listed in testimages/findings.json.
"""

import hashlib
import os
import shutil
import sys


def h(s, n=16):
    return hashlib.sha1(s.encode("utf-8")).hexdigest()[:n]


class Tree:
    def __init__(self, root, dry=False):
        self.root = root
        self.dry = dry  # only collect the DOS names (findings.py)
        self.dos = []

    def p(self, rel):
        return os.path.join(self.root, *rel.split("/"))

    def dir(self, rel, dos=None):
        if not self.dry:
            os.makedirs(self.p(rel), exist_ok=True)
        if dos:
            self.dos.append((rel, dos))

    def file(self, rel, data=b"", dos=None):
        if self.dry:
            if dos:
                self.dos.append((rel, dos))
            return
        path = self.p(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(data, str):
            data = data.encode("utf-8")
        with open(path, "wb") as f:
            f.write(data)
        if dos:
            self.dos.append((rel, dos))


def crlf(lines):
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def cbs_line(ts, level, comp, msg):
    # CBS.log: "date time, Level<pad to 22> Comp<pad to 7>message"
    return "%s, %-22s%-7s%s" % (ts, level, comp, msg)


UPDATE_BLOCKS = [
    "0.0.0.0 windowsupdate.com",
    "0.0.0.0 download.windowsupdate.com",
    "0.0.0.0 au.download.windowsupdate.com",
    "0.0.0.0 ctldl.windowsupdate.com",
    "127.0.0.1 update.microsoft.com",
    "0.0.0.0 fe2.update.microsoft.com",
    "0.0.0.0 sls.update.microsoft.com.akadns.net",
    "0.0.0.0 statsfe2.update.microsoft.com.akadns.net",
    "0.0.0.0\tdl.delivery.mp.microsoft.com   # blocked by privacy tool",
    "0.0.0.0 fe3.delivery.mp.microsoft.com",
    "0.0.0.0 emdl.ws.microsoft.com",
]
# hosts lines in the tools' own styles (broken profiles): IPv6 loopback,
# WindowsSpyBlocker's "<hex>-1.l.windowsupdate.com" CDN names, Wu10Man's
# and privacy.sexy's markers.
TOOL_BLOCKS = [
    "::1 tlu.dl.delivery.mp.microsoft.com",
    "0.0.0.0 a122-1.l.windowsupdate.com",
    "0.0.0.0 8d0f-1.l.windowsupdate.com",
]
TOOL_MARKERS_START = ["# Start of entries added by Wu10Man"]
TOOL_MARKERS_END = ["# End of entries added by Wu10Man"]
PRIVACY_SEXY = ["0.0.0.0 displaycatalog.mp.microsoft.com # managed by privacy.sexy"]

# Renamed update binaries (broken profiles): System32 name -> name on disk.
RENAMED_BINARIES = {"wuaueng.dll": "wuaueng_BAK.dll", "WaaSMedicSvc.dll": "Wu10Man_WaaSMedicSvc.dll"}

# Update tasks (UpdateOrchestrator); broken profiles rename one aside and
# disable another.
UPDATE_TASKS = ["Schedule Scan", "USO_UxBroker", "Reboot_AC"]
TASK_RENAMED = ("Schedule Scan", "Schedule Scan.bak")
TASK_DISABLED = "USO_UxBroker"


def task_xml(name, enabled):
    """A task definition as Task Scheduler writes it: UTF-16LE with a BOM."""
    x = ('<?xml version="1.0" encoding="UTF-16"?>\r\n'
         '<Task version="1.6" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">\r\n'
         '  <RegistrationInfo><URI>\\Microsoft\\Windows\\UpdateOrchestrator\\%s</URI></RegistrationInfo>\r\n'
         '  <Settings><Enabled>%s</Enabled></Settings>\r\n'
         '  <Actions Context="Author"><Exec><Command>%%systemroot%%\\system32\\usoclient.exe</Command><Arguments>StartScan</Arguments></Exec></Actions>\r\n'
         '</Task>\r\n') % (name, "true" if enabled else "false")
    return b"\xff\xfe" + x.encode("utf-16-le")


# Local Group Policy (Registry.pol, PReg v1), written here from Microsoft's
# format description; wuoffline reads it with its own parser.
PREG_WU = "Software\\Policies\\Microsoft\\Windows\\WindowsUpdate"
GP_BLOCKS = [  # removed by fix (the wu-policies rules)
    (PREG_WU, "WUServer", 1, "http://127.0.0.1:8530"),
    (PREG_WU, "DisableWindowsUpdateAccess", 4, 1),
    (PREG_WU + "\\AU", "NoAutoUpdate", 4, 1),
    (PREG_WU + "\\AU", "UseWUServer", 4, 1),
]
GP_KEEP = [  # kept byte for byte: a privacy policy, a user choice, an instruction
    ("Software\\Policies\\Microsoft\\Windows\\DataCollection", "AllowTelemetry", 4, 0),
    ("Software\\Policies\\Microsoft\\Windows\\Personalization", "NoLockScreen", 4, 1),
    (PREG_WU, "**del.WUStatusServer", 1, " "),
]
GPT_INI_VERSION = 65537  # user version 1, machine version 1


def preg(entries):
    import struct
    b = b"PReg" + struct.pack("<I", 1)
    for key, name, typ, val in entries:
        data = struct.pack("<I", val) if typ == 4 else (val + "\0").encode("utf-16-le")
        b += ("[" + key + "\0;" + name + "\0;").encode("utf-16-le")
        b += struct.pack("<I", typ) + ";".encode("utf-16-le") + struct.pack("<I", len(data)) + ";".encode("utf-16-le")
        b += data + "]".encode("utf-16-le")
    return b


def gp_entries(broken):
    """Registry.pol entries in file order (blockers interleaved with the rest)."""
    if not broken:
        return GP_KEEP[:2]
    return [GP_KEEP[0], GP_BLOCKS[0], GP_BLOCKS[1], GP_KEEP[2], GP_BLOCKS[2], GP_BLOCKS[3], GP_KEEP[1]]


TELEMETRY = [
    "0.0.0.0 vortex.data.microsoft.com",
    "0.0.0.0 vortex-win.data.microsoft.com",
    "0.0.0.0 settings-win.data.microsoft.com",
    "0.0.0.0 telemetry.microsoft.com",
    "0.0.0.0 watson.telemetry.microsoft.com",
]

WINDOWS_ENTRIES = [
    "addins", "appcompat", "apppatch", "AppReadiness", "assembly", "bcastdvr", "Boot", "Branding", "CbsTemp",
    "Containers", "CSC", "Cursors", "debug", "diagnostics", "DiagTrack", "DigitalLocker", "Downloaded Program Files",
    "en-US", "Fonts", "GameBarPresenceWriter", "Globalization", "Help", "IdentityCRL", "IME", "ImmersiveControlPanel",
    "INF", "InputMethod", "L2Schemas", "LanguageOverlayCache", "LiveKernelReports", "Media", "Microsoft.NET",
    "Migration", "ModemLogs", "OCR", "Offline Web Pages", "Performance", "PLA", "PolicyDefinitions", "Prefetch",
    "PrintDialog", "Provisioning", "Registration", "RemotePackages", "rescache", "Resources", "SchCache", "schemas",
    "security", "ServiceProfiles", "ServiceState", "servicing", "Setup", "ShellComponents", "ShellExperiences",
    "SKB", "Speech", "Speech_OneCore", "System", "SystemApps", "SystemResources", "SystemTemp", "SysWOW64", "TAPI",
    "Tasks", "Temp", "tracing", "twain_32", "Vss", "WaaS", "Web",
]
WINDOWS_FILES = [
    "bfsvc.exe", "bootstat.dat", "comsetup.log", "diagerr.xml", "diagwrn.xml", "DtcInstall.log", "explorer.exe",
    "HelpPane.exe", "hh.exe", "lsasetup.log", "mib.bin", "notepad.exe", "PFRO.log", "Professional.xml",
    "regedit.exe", "setupact.log", "splwow64.exe", "system.ini", "twain_32.dll", "win.ini", "WindowsShell.Manifest",
    "winhlp32.exe", "WMSysPr9.prx", "write.exe",
]
SYSTEM32_FILES = [
    "advapi32.dll", "bcdedit.exe", "cmd.exe", "combase.dll", "crypt32.dll", "cryptsvc.dll", "dism.exe", "dosvc.dll",
    "hal.dll", "kernel32.dll", "kernelbase.dll", "msiexec.exe", "msimsg.dll", "ntdll.dll", "ntoskrnl.exe",
    "poqexec.exe", "qmgr.dll", "reg.exe", "sc.exe", "services.exe", "sfc.exe", "svchost.exe", "usosvc.dll",
    "WaaSMedicSvc.dll", "wevtsvc.dll", "winload.efi", "winload.exe", "wuapi.dll", "wuauclt.exe", "wuaueng.dll",
    "wups.dll", "wups2.dll", "wuuhext.dll", "catsrv.dll", "catsrvps.dll", "catsrvut.dll", "CatRoot2.dll",
]


def read_hive(hivedir, name, dry):
    if dry:
        return b""
    with open(os.path.join(hivedir, name), "rb") as f:
        return f.read()


def build(profile, hivedir, dest, dry=False):
    v11 = profile.endswith("win11")
    broken = profile.startswith("broken")
    build_no = "22621" if v11 else "19041"
    ubr = 4169 if v11 else 3803
    t = Tree(dest, dry)
    W = "Windows"
    S32 = W + "/System32"

    # Root of the volume.
    t.dir("$Recycle.Bin/S-1-5-21-3623811015-3361044348-30300820-1001")
    t.dir("Boot")
    t.dir("Program Files", dos="PROGRA~1")
    t.dir("Program Files/Common Files")
    t.dir("Program Files/Contoso/Updater")
    t.file("Program Files/Contoso/Updater/upd.exe", b"MZ")
    t.dir("Program Files (x86)", dos="PROGRA~2")
    t.dir("ProgramData", dos="PROGRA~3")
    t.dir("Recovery")
    t.dir("System Volume Information", dos="SYSTEM~1")
    t.dir("Users/Default")
    t.dir("Users/Public/Documents")
    t.dir("Users/Ünïcødé/Documents")
    t.file("Users/Ünïcødé/Documents/Résumé — naïve.txt", "ünïcødé\r\n")
    t.dir("Users/Пользователь/Рабочий стол")
    t.file("Users/Пользователь/Рабочий стол/Заметки.txt", "привет\r\n")
    t.file("bootmgr", b"")
    t.file("BOOTNXT", b"")
    t.file("DumpStack.log.tmp", b"")
    # hiberfil.sys: the healthy twin has one whose header Windows zeroed
    # after a normal resume (not a refusal); broken images have none (the
    # refuse-hibernated variant adds a "hibr" one).
    if not broken:
        t.file("hiberfil.sys", bytes(65536))

    # Windows\ and its neighbours.
    for d in WINDOWS_ENTRIES:
        t.dir(W + "/" + d)
    for f in WINDOWS_FILES:
        t.file(W + "/" + f)
    for i in range(120):
        t.file(W + "/Setup%03d.log" % i)   # sorts just before SoftwareDistribution
        t.file(W + "/Sys%03d.tmp" % i)     # sorts just after it
    t.dir(W + "/SoftwareDistributionX", dos="SOFTWA~2")
    t.dir(W + "/Softwaredistribution_bak", dos="SOFTWA~3")
    t.file(W + "/Softwaredistribution_bak/readme.txt", "copy made by a cleanup tool\r\n")
    if profile == "broken-win11":
        # Exercises the ".old.1" suffix rule.
        t.dir(W + "/SoftwareDistribution.old", dos="SOFTWA~4")
        t.dir(W + "/SoftwareDistribution.old/DataStore")
        t.file(W + "/SoftwareDistribution.old/DataStore/DataStore.edb", b"")
    t.file(W + "/Ünïcødé-тест.txt", "ünïcødé тест\r\n")

    # SoftwareDistribution.
    SD = W + "/SoftwareDistribution"
    t.dir(SD, dos="SOFTWA~1")
    for d in ("AuthCabs", "DeliveryOptimization", "EventCache.v2", "PostRebootEventCache.V2", "SLS", "ScanFile",
              "Plugins", "DataStore/Logs"):
        t.dir(SD + "/" + d)
    kbs = [("5043076", "2024-09 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5043076)")] if v11 else \
          [("5043064", "2024-09 Cumulative Update for Windows 10 Version 22H2 for x64-based Systems (KB5043064)")]
    kb, title = kbs[0]
    if broken:
        t.file(SD + "/DataStore/DataStore.edb", b"", dos="DATAST~1.EDB")  # empty
        dl = SD + "/Download/" + h("dl-" + profile, 32)
        name = ("Windows11.0" if v11 else "Windows10.0") + "-KB%s-x64" % kb
        t.file(dl + "/" + name + ".cab", bytes(16384))            # zero-filled
        t.file(dl + "/" + name + ".psf", bytes(8192))             # zero-filled
        t.file(dl + "/" + name + "-express.cab", b"MSC")          # truncated
        t.dir(SD + "/Download/" + h("dl2-" + profile, 32))
    else:
        # A small ESE-looking header (magic 0x89ABCDEF at 4) and content.
        edb = bytearray(32768)
        edb[4:8] = bytes.fromhex("efcdab89")
        edb[8:4096] = (b"DataStore" * 500)[:4088]
        t.file(SD + "/DataStore/DataStore.edb", bytes(edb), dos="DATAST~1.EDB")
        t.dir(SD + "/Download/" + h("dl-" + profile, 32))
    t.file(SD + "/DataStore/Logs/edb.chk", bytes(8192))
    t.file(SD + "/DataStore/Logs/edb.log", b"")
    t.file(SD + "/DataStore/Logs/edbtmp.log", b"")
    re_lines = []
    if broken:
        re_lines.append("{%s}\t2024-09-12 10:15:32:123+0200\t1\t182\t101\t{%s}\t200\t80070002\tUpdateOrchestrator\tFailure\tContent Install\t"
                        "Installation Failure: Windows failed to install the following update with error 0x80070002: %s."
                        % (h("re1" + profile, 8).upper() + "-1A2B-4C3D-8E9F-" + h("re1b" + profile, 12).upper(),
                           h("re1c" + profile, 8).upper() + "-5D6E-4F70-8192-" + h("re1d" + profile, 12).upper(), title))
    re_lines.append("{%s}\t2024-08-14 09:02:11:512+0200\t1\t147\t101\t{%s}\t200\t0\tUpdateOrchestrator\tSuccess\tContent Download\t"
                    "Download succeeded."
                    % (h("re2" + profile, 8).upper() + "-2B3C-4D5E-9F00-" + h("re2b" + profile, 12).upper(),
                       h("re2c" + profile, 8).upper() + "-6E7F-4081-92A3-" + h("re2d" + profile, 12).upper()))
    # ReportingEvents.log is UTF-16LE with a BOM, CRLF.
    t.file(SD + "/ReportingEvents.log", b"\xff\xfe" + ("\r\n".join(re_lines) + "\r\n").encode("utf-16-le"))

    # System32.
    t.dir(S32)
    for f in SYSTEM32_FILES:
        if broken and f in RENAMED_BINARIES:
            t.file(S32 + "/" + RENAMED_BINARIES[f], b"MZ")
            continue
        t.file(S32 + "/" + f)
    # Update tasks.
    tasks = S32 + "/Tasks/Microsoft/Windows/UpdateOrchestrator"
    for name in UPDATE_TASKS:
        fname = TASK_RENAMED[1] if broken and name == TASK_RENAMED[0] else name
        t.file(tasks + "/" + fname, task_xml(name, not (broken and name == TASK_DISABLED)))
    # Local Group Policy.
    t.file(S32 + "/GroupPolicy/Machine/Registry.pol", preg(gp_entries(broken)))
    t.file(S32 + "/GroupPolicy/gpt.ini", crlf(["[General]", "gPCMachineExtensionNames=[{35378EAC-683F-11D2-A89A-00C04FBBCFA2}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]",
                                              "Version=%d" % GPT_INI_VERSION]))
    for i in range(300):
        t.file(S32 + "/api-ms-win-core-%s-l1-1-%d.dll" % (h("api%d" % i, 6), i % 3))
    for i in range(40):
        t.file(S32 + "/cat%s.dll" % h("cat%d" % i, 5))   # around catroot / catroot2
    t.dir(S32 + "/drivers/etc")
    hosts = ["# Hosts file of a wuoffline test image.", "#", "# Format: IP address, whitespace, host name.",
             "#", "# localhost name resolution is handled within DNS itself.", "#\t127.0.0.1       localhost",
             "#\t::1             localhost", ""]
    if broken:
        hosts += ["# Added by an anti-spying tool"] + UPDATE_BLOCKS + ["# 0.0.0.0 download.windowsupdate.com (already commented)", ""]
        hosts += TOOL_MARKERS_START + TOOL_BLOCKS + TOOL_MARKERS_END + PRIVACY_SEXY + [""]
    hosts += ["# telemetry (not update hosts: leave them)"] + TELEMETRY
    t.file(S32 + "/drivers/etc/hosts", crlf(hosts))
    t.file(S32 + "/drivers/etc/networks", crlf(["loopback 127"]))
    t.file(S32 + "/drivers/etc/protocol", crlf(["ip 0 IP", "tcp 6 TCP", "udp 17 UDP"]))
    t.file(S32 + "/drivers/etc/services", crlf(["http 80/tcp www", "https 443/tcp"]))
    for f in ("ntfs.sys", "tcpip.sys", "volmgr.sys", "disk.sys", "wdfilter.sys", "fileinfo.sys", "bindflt.sys", "wcifs.sys",
              "luafv.sys", "cldflt.sys"):
        t.file(S32 + "/drivers/" + f)

    # catroot (CatRoot) and catroot2.
    for g in ("{127D0A1D-4EF2-11D1-8608-00C04FC295EE}", "{F750E6C3-38EE-11D1-85E5-00C04FC295EE}"):
        t.dir(S32 + "/CatRoot/" + g)
        t.file(S32 + "/CatRoot/%s/Package_for_RollupFix~31bf3856ad364e35~amd64~~%s.%d.1.13.cat" % (g, build_no, ubr), b"0\x82")
    t.dir(S32 + "/catroot2_x")
    C2 = S32 + "/catroot2"
    t.dir(C2, dos="CATROOT2")
    for f in ("edb.chk", "edb.log", "edbres00001.jrs", "edbres00002.jrs", "edbtmp.log"):
        t.file(C2 + "/" + f, bytes(4096) if f.endswith(".chk") else b"")
    for g in ("{127D0A1D-4EF2-11D1-8608-00C04FC295EE}", "{F750E6C3-38EE-11D1-85E5-00C04FC295EE}"):
        t.file(C2 + "/" + g + "/catdb", bytes(8192))
    if broken:
        t.file(C2 + "/dberr.txt", crlf([
            "CatalogDB: 10:15:31 12/09/2024: catdbsv.cpp at line #475 encountered error 0x80070002",
            "CatalogDB: 10:15:31 12/09/2024: DWORD _CatDBAddCatalog: failed to open catalog file: error 0x80070002"]))

    # config: hives, logs, transaction logs.
    CFG = S32 + "/config"
    t.dir(CFG + "/RegBack")
    t.dir(CFG + "/systemprofile")
    for hv in ("SYSTEM", "SOFTWARE", "COMPONENTS", "DEFAULT", "SAM", "SECURITY"):
        t.file(CFG + "/" + hv, read_hive(hivedir, hv, dry))
        t.file(CFG + "/" + hv + ".LOG1", b"")
        t.file(CFG + "/" + hv + ".LOG2", b"")
    for hv in ("BBI", "DRIVERS", "ELAM"):
        t.file(CFG + "/" + hv, read_hive(hivedir, "DEFAULT", dry))
        t.file(CFG + "/" + hv + ".LOG1", b"")
        t.file(CFG + "/" + hv + ".LOG2", b"")
    txr = "{%s-0c6f-11ef-b0a6-%s}" % (h("txr" + profile, 8), h("txr2" + profile, 12))
    t.file(CFG + "/TxR/%s.TxR.blf" % txr, bytes(4096))
    for i in (1, 2):
        t.file(CFG + "/TxR/%s.TxR.%d.regtrans-ms" % (txr, i), bytes(4096))
    t.file(CFG + "/TxR/%s.TxR.0.regtrans-ms" % txr, bytes(4096))

    # Logs.
    if broken:
        srt = "\r\n".join([
            "Startup Repair diagnosis and repair log", "---------------------------",
            "Last successful boot time: 9/12/2024 8:15:32 AM (GMT)", "Number of repair attempts: 3", "",
            "Session details", "---------------------------", "System Disk = \\Device\\Harddisk0",
            "Windows directory = C:\\Windows", "AutoChk Run = 0", "Number of root causes = 1", "",
            "Test Performed: ", "---------------------------", "Name: Check for updates",
            "Result: Completed successfully. Error code =  0x0", "Time taken = 0 ms", "",
            "Test Performed: ", "---------------------------", "Name: System disk test",
            "Result: Completed successfully. Error code =  0x0", "Time taken = 0 ms", "",
            "Root cause found: ", "---------------------------", "A patch is preventing the system from starting.", "",
            "Repair action: Uninstall latest quality update", "Result: Failed. Error code =  0x80070002",
            "Time taken = 26015 ms", "", "---------------------------", "---------------------------", ""])
        t.file(S32 + "/LogFiles/Srt/SrtTrail.txt", b"\xff\xfe" + srt.encode("utf-16-le"))
    else:
        t.dir(S32 + "/LogFiles/Srt")
    t.dir(S32 + "/LogFiles/WMI")
    t.dir(S32 + "/winevt/Logs")
    pkg = "Package_for_RollupFix~31bf3856ad364e35~amd64~~%s.%d.1.13" % (build_no, ubr)
    comp = "amd64_microsoft-windows-wuaueng_31bf3856ad364e35_10.0.%s.%d_none_%s" % (build_no, ubr, h("wuaueng" + profile))
    cbs = [cbs_line("2024-09-12 10:14:58", "Info", "CBS", "TI: --- Initializing Trusted Installer ---"),
           cbs_line("2024-09-12 10:14:58", "Info", "CBS", "Starting TrustedInstaller initialization."),
           cbs_line("2024-09-12 10:14:59", "Info", "CBS", "Session: 31143027_2118429347 initialized by client UpdateAgentLCU, external staging directory: (null), external registry directory: (null)")]
    if broken:
        cbs += [cbs_line("2024-09-12 10:15:30", "Info", "CBS", "Exec: Processing started.  Client: UpdateAgentLCU, Session(Stage): 31143027_2118429347, Package: %s" % pkg),
                cbs_line("2024-09-12 10:15:31", "Info", "CBS", "Failed to find file: %s\\wuaueng.dll [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]" % comp),
                cbs_line("2024-09-12 10:15:31", "Error", "CSI", "00000015 (F) STATUS_OBJECT_NAME_NOT_FOUND #1234# from Windows::Rtl::SystemImplementation::DirectFileSystemProvider::SysCreateFile(flags = (AllowSharingViolation), handle = {provider=NULL, handle=0, name= (\"null\")}, da = (SYNCHRONIZE|FILE_READ_ATTRIBUTES), oa = @0xa6f6c7e8c0->OBJECT_ATTRIBUTES {s:48; rd:NULL; on:[126]'\\??\\C:\\Windows\\WinSxS\\%s\\wuaueng.dll'; a:(OBJ_CASE_INSENSITIVE)})[gle=0x80070002]" % comp),
                cbs_line("2024-09-12 10:15:32", "Error", "CBS", "Failed to install package: %s (KB%s) [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]" % (pkg, kb)),
                cbs_line("2024-09-12 10:15:32", "Info", "CBS", "Exec: Processing complete.  Session: 31143027_2118429347, Package: %s [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]" % pkg),
                cbs_line("2024-09-12 10:15:33", "Info", "CBS", "Reboot mark set"),
                cbs_line("2024-09-12 10:15:33", "Info", "CBS", "Winlogon: Registering for CreateSession notifications")]
        if not v11:
            cbs.append(cbs_line("2024-09-12 10:15:34", "Error", "CBS", "Failed to commit registry transaction [HRESULT = 0x800719e4 - ERROR_LOG_FULL]"))
    else:
        cbs += [cbs_line("2024-09-12 10:15:30", "Info", "CBS", "Exec: Processing complete.  Session: 31143027_2118429347, Package: %s [HRESULT = 0x0 - S_OK]" % pkg),
                cbs_line("2024-09-12 10:15:33", "Info", "CBS", "Ending TrustedInstaller finalization.")]
    t.file(W + "/Logs/CBS/CBS.log", crlf(cbs))
    persist = [cbs_line("2024-09-10 08:15:30", "Info", "CBS", "TI: --- Initializing Trusted Installer ---"),
               cbs_line("2024-09-10 08:15:31", "Info", "CBS", "Loaded Servicing Stack v10.0.%s.4160 with Core: C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.22621.4160_none_4bf2fb8fbf7ba4fb\\cbscore.dll" % build_no)]
    if broken:
        persist.append(cbs_line("2024-09-10 08:16:02", "Info", "CBS", "Failed to find file: %s\\wups2.dll [HRESULT = 0x80070002 - ERROR_FILE_NOT_FOUND]" % comp))
    t.file(W + "/Logs/CBS/CbsPersist_20240910081530.log", crlf(persist))
    t.file(W + "/Logs/CBS/FilterList.log", b"")
    dism = ["2024-09-12 10:20:01, Info                  DISM   PID=4412 TID=4416 Scratch directory set to 'C:\\Windows\\TEMP\\'. - CDISMManager::put_ScratchDir"]
    if broken:
        dism.append("2024-09-12 10:20:07, Error                 DISM   DISM Package Manager: PID=4412 TID=4416 Failed finalizing changes. - CDISMPackageManager::Internal_Finalize(hr:0x80070002)")
    t.file(W + "/Logs/DISM/dism.log", crlf(dism))
    for i in range(3):
        # ETW traces: presence only; the contents are zero-filled placeholders.
        t.file(W + "/Logs/WindowsUpdate/WindowsUpdate.20240912.1015%02d.%03d.%d.etl" % (30 + i, 100 + i, i + 1), bytes(4096))
    setuperr = []
    if profile == "broken-win10":
        setuperr = ["2024-09-12 10:40:12, Error                 SP     Operation failed: Add [1] directory C:\\$WINDOWS.~BT\\NewOS\\Windows\\WinSxS. Error: 0x80070002[gle=0x00000002]",
                    "2024-09-12 10:40:12, Error                 MOUPG  CSetupManager::ExecuteInstallMode(823): Result = 0x80070002"]
    t.file(W + "/Panther/setuperr.log", crlf(setuperr) if setuperr else b"")
    t.file(W + "/Panther/setupact.log", crlf(["2024-09-12 10:40:01, Info                  SP     Setup started"]))
    if v11:
        # Windows 10/11 keep a stub WindowsUpdate.log pointing at the ETW traces.
        t.file(W + "/WindowsUpdate.log", crlf(["Windows Update logs are now generated using ETW (Event Tracing for Windows).",
                                               "Please run the Windows PowerShell command 'Get-WindowsUpdateLog' to convert ETW traces into a readable WindowsUpdate.log.",
                                               "", "For more information, please visit https://go.microsoft.com/fwlink/?LinkId=518345"]))

    # BITS queue.
    DL = "ProgramData/Microsoft/Network/Downloader"
    t.file(DL + "/qmgr.db", b"\x00\x00\x00\x00\xef\xcd\xab\x89" + bytes(8184))
    t.file(DL + "/qmgr.jfm", bytes(8192))
    t.file(DL + "/edb.chk", bytes(8192))
    t.file(DL + "/edb.log", b"")
    t.dir("ProgramData/Microsoft/Windows Defender/Definition Updates/Backup")
    t.file("ProgramData/Microsoft/Windows Defender/Definition Updates/Backup/mpengine.dll", b"MZ")

    # WinSxS: thousands of component directories.
    SXS = W + "/WinSxS"
    comps = ["microsoft-windows-%s" % c for c in (
        "servicingstack", "wuaueng", "wuapi", "usosvc", "bits-client", "cryptsvc", "kernel32", "ntdll", "shell32",
        "explorer", "networking-mpssvc-svc", "international-core", "security-credui", "directx-direct3d11",
        "i..national-timezones", "m..s-mdac-odbc32", "notepad", "s..booting-bootmgr", "t..executionservices",
        "w..-servicing-setup", "ie-htmlrendering", "os-kernel", "com-base", "winlogon", "winsock-core")]
    for i in range(3000):
        c = comps[i % len(comps)]
        arch = ("amd64", "wow64", "x86", "msil")[i % 4 if i % 7 else 0]
        ver = "10.0.%s.%d" % (build_no, (i * 37) % 4200 + 1)
        lang = "none" if i % 5 else "en-us"
        t.dir(SXS + "/%s_%s_31bf3856ad364e35_%s_%s_%s" % (arch, c + ("" if i < len(comps) else "-%d" % (i // 25)), ver, lang,
                                                           h("sxs%d%s" % (i, profile))))
    t.dir("%s/amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.22621.4160_none_4bf2fb8fbf7ba4fb" % SXS)
    for d in ("Backup", "Catalogs", "FileMaps", "Manifests", "Temp/PendingDeletes", "Temp/PendingRenames",
              "Temp/InFlight", "InstallTemp"):
        t.dir(SXS + "/" + d)
    t.file(SXS + "/poqexec.log", crlf(["36f0ca3ab1f3da01: Performing operation: DeleteFile",
                                      "36f0ca3ab1f3da01: Operation completed."]))
    if broken:
        ident = "916daf2f4e04db01c5080000fc0fe41a" if v11 else "a0c6e9d3b81dda01e8030000bc19f813"
        xml = ("<?xml version='1.0' encoding='utf-8'?>\r\n"
               "<PendingTransaction Version=\"3.1\" WcpVersion=\"10.0.%s.%d (WinBuild.160101.0800)\" Identifier=\"%s\">\r\n"
               "<Creations>\r\n<DirectoryCreate path=\"\\SystemRoot\\WinSxS\\%s\"/>\r\n</Creations>\r\n"
               "<POQ postAction=\"reboot\">\r\n"
               "<HardlinkFile source=\"\\SystemRoot\\WinSxS\\%s\\wuaueng.dll\" destination=\"\\SystemRoot\\System32\\wuaueng.dll\"/>\r\n"
               "<MoveFile source=\"\\SystemRoot\\WinSxS\\Temp\\PendingRenames\\%s.ntoskrnl.exe\" destination=\"\\SystemRoot\\System32\\ntoskrnl.exe\"/>\r\n"
               "<DeleteFile path=\"\\SystemRoot\\WinSxS\\Temp\\PendingDeletes\\$$DeleteMe.wups2.dll\"/>\r\n"
               "<SetKeyValue path=\"\\Registry\\Machine\\COMPONENTS\" name=\"ExecutionState\" type=\"0x00000004\" encoding=\"base64\" value=\"AAAAAA==\"/>\r\n"
               "</POQ>\r\n</PendingTransaction>\r\n") % (build_no, ubr, ident, comp, comp, ident)
        t.file(SXS + "/pending.xml", xml.encode("utf-8"), dos="PENDIN~1.XML")
        if not v11:
            t.file(SXS + "/pending.xml.bad", xml.encode("utf-8"), dos="PENDIN~2.BAD")

    # System Volume Information / misc.
    t.file("System Volume Information/IndexerVolumeGuid", "{%s}" % h("vol" + profile, 8).upper())
    return t


def main():
    profile, hivedir, dest, dosout = sys.argv[1:5]
    if os.path.exists(dest):
        shutil.rmtree(dest)
    t = build(profile, hivedir, dest)
    # Windows names are case-insensitive: no two siblings may differ by case only.
    for d, dirs, files in os.walk(dest):
        names = [n.upper() for n in dirs + files]
        if len(names) != len(set(names)):
            sys.exit("mktree: case-insensitive duplicate under %s" % d)
    with open(dosout, "w", encoding="utf-8") as f:
        for rel, dos in t.dos:
            f.write("%s\t%s\n" % (rel, dos))


if __name__ == "__main__":
    main()
