#!/usr/bin/env python3
"""Write testimages/findings.json: what every built image holds and, per
check id of repair-catalog.md, the evidence planted in it.

Usage: findings.py OUT.json

The planted values come from the same tables mkhives.py and mktree.py use,
so the two cannot drift apart; the geometry is the fixed layout of build.sh.
Statuses follow repair-catalog.md; where the catalogue leaves the status of a
report-only check open, "status_note" says so.
"""

import json
import sys

import mkhives as H
import mktree as T

MIB = 1 << 20

WIN = {
    "broken-win11": {"ProductName": "Windows 10 Pro", "DisplayVersion": "23H2", "CurrentBuild": "22631",
                     "CurrentBuildNumber": "22631", "UBR": 4169, "EditionID": "Professional",
                     "InstallationType": "Client", "CurrentMajorVersionNumber": 10, "CurrentMinorVersionNumber": 0,
                     "major": 11, "version_string": "10.0.22631.4169"},
    "broken-win10": {"ProductName": "Windows 10 Home", "DisplayVersion": "22H2", "CurrentBuild": "19045",
                     "CurrentBuildNumber": "19045", "UBR": 3803, "EditionID": "Core",
                     "InstallationType": "Client", "CurrentMajorVersionNumber": 10, "CurrentMinorVersionNumber": 0,
                     "major": 10, "version_string": "10.0.19045.3803"},
}
WIN["healthy-win11"] = dict(WIN["broken-win11"])

SD = "Windows/SoftwareDistribution"
CBS = "Microsoft\\Windows\\CurrentVersion\\Component Based Servicing"
AU = "Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update"
POL = "Policies\\Microsoft\\Windows\\WindowsUpdate"
CONN = "Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections"
DIRECT = "1800000000000000010000000000000000000000"


def hexval(v):
    return v[1].hex()


def pairs(lst):
    return [{"source": lst[i], "destination": lst[i + 1]} for i in range(0, len(lst), 2)]


def services(prof):
    v = 11 if prof.endswith("win11") else 10
    d = {s: {"start": st, "delayed": bool(dl)} for s, (st, dl) in H.DEFAULT_START[v].items()}
    if prof == "broken-win11":
        return {"status": "problem", "control_set": "ControlSet001",
                "disabled": ["wuauserv", "BITS", "UsoSvc"], "missing": ["DoSvc"], "missing_imagepath": [],
                "changed": ["TrustedInstaller"],
                "fix_start": {s: d[s]["start"] for s in ("wuauserv", "BITS", "UsoSvc", "TrustedInstaller")},
                "defaults_table": "Windows 11",
                "left_alone": {s: d[s] for s in d if s not in ("wuauserv", "BITS", "UsoSvc", "DoSvc", "TrustedInstaller")},
                "note": "TrustedInstaller Start=2 (WindowsDowndate: servicing at every boot) is set back to 3"}
    if prof == "broken-win10":
        return {"status": "problem", "control_set": "ControlSet002",
                "disabled": ["wuauserv", "BITS", "UsoSvc", "WaaSMedicSvc"], "missing": [], "missing_imagepath": ["DoSvc"],
                "changed": ["TrustedInstaller"],
                "fix_start": {s: d[s]["start"] for s in ("wuauserv", "BITS", "UsoSvc", "WaaSMedicSvc", "TrustedInstaller")},
                "defaults_table": "Windows 10",
                "note": "DoSvc key present without ImagePath: reported, not invented; TrustedInstaller Start=2 set back to 3; ControlSet001 (LastKnownGood) holds healthy services and must stay untouched"}
    return {"status": "ok", "control_set": "ControlSet001", "disabled": [], "missing": [], "missing_imagepath": [],
            "start": {s: d[s] for s in d}}


def hosts(prof):
    lines = []
    if prof.startswith("broken"):
        lines = list(T.UPDATE_BLOCKS) + T.TOOL_BLOCKS + T.PRIVACY_SEXY
    return {"path": "Windows/System32/drivers/etc/hosts", "line_ending": "CRLF",
            "status": "problem" if lines else "ok", "lines": lines,
            "left_alone": T.TELEMETRY + (["# 0.0.0.0 download.windowsupdate.com (already commented)"] +
                                         T.TOOL_MARKERS_START + T.TOOL_MARKERS_END if lines else [])}


def firewall(prof):
    key = "SYSTEM\\%s\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\FirewallRules" % (
        "ControlSet002" if prof == "broken-win10" else "ControlSet001")
    if prof.startswith("broken"):
        return {"status": "problem", "key": key, "delete": H.BLOCK_RULES,
                "why": {"WindowsUpdateBlock": "Action=Block and Svc=wuauserv",
                        "{5B1C8F2A-0E3D-4C7B-9A61-2F8D3E4B5C6D}": "Action=Block and Name says Windows Update (Svc=BITS)"},
                "left_alone": sorted(H.ALLOW_RULES), "reported_kept": sorted(H.ADDRESS_RULES)}
    return {"status": "info", "key": key, "delete": {}, "left_alone": sorted(H.ALLOW_RULES), "reported_kept": sorted(H.ADDRESS_RULES),
            "status_note": "an address-only block rule whose name does not say Windows Update: reported (info), kept"}


def blockers(prof):
    """The checks of the tools' damage (docs/catalogue.md): what is planted
    on the broken profiles, and the look-alikes every profile carries."""
    broken = prof.startswith("broken")
    cs = "ControlSet002" if prof == "broken-win10" else "ControlSet001"
    ifeo = "SOFTWARE\\" + H.IFEO
    svc = "SYSTEM\\%s\\Services\\" % cs
    c = {"service-config": {"status": "ok", "status_note": "accounts, failure actions and descriptors as Windows sets them; uhssvc/sedsvc absent",
                            "left_alone": {svc + "UsoSvc\\Security\\Security": H.USO_SD_GUESTS.hex(),
                                           svc + "wuauserv\\Security\\Security": H.WU_SD.hex()}}}
    if broken:
        c["service-config"] = {
            "status": "problem", "evidence": ["wuauserv", "(D;;RPWPDT;;;SY)", "(D;;RPWPDT;;;BA)", "CryptSvc", "cannot be read"],
            "set_descriptor": {svc + "wuauserv\\Security\\Security": {"before": H.WU_SD_LOCKED.hex(), "dacl_after": H.DOCUMENTED_DACL,
                                                                        "owner": "S-1-5-18", "group": "S-1-5-18"}},
            "left_alone": {svc + "UsoSvc\\Security\\Security": H.USO_SD_GUESTS.hex(),
                           svc + "CryptSvc\\Security\\Security": H.CRYPTSVC_SD_DAMAGED.hex()},
            "status_note": "UsoSvc denies Guests only (D;;RPWP;;;BG): a look-alike, kept; CryptSvc's value is no descriptor: reported, never rewritten"}
    if not broken:
        for id in ("servicing-triggers", "renamed-binaries", "update-tasks", "update-pause", "ifeo-debuggers", "group-policy-file"):
            c[id] = {"status": "ok"}
        c["ifeo-debuggers"]["left_alone"] = {ifeo + "\\" + H.IFEO_USER[0] + "\\Debugger": H.IFEO_USER[1]}
        c["update-pause"]["left_alone"] = ["ActiveHoursStart", "ActiveHoursEnd"]
        c["group-policy-file"].update({"path": "Windows/System32/GroupPolicy/Machine/Registry.pol",
                                       "entries": [list(e) for e in T.gp_entries(False)]})
        return c
    c["servicing-triggers"] = {"status": "problem", "evidence": ["PoqexecCmdline", "ServicingInProgress"],
                               "delete": {"SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\SideBySide\\Configuration\\PoqexecCmdline": [H.POQEXEC_CMDLINE],
                                          "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\Interface\\ServicingInProgress": 1},
                               "left_alone": ["SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\SideBySide\\Configuration\\DisableResetbase"]}
    c["ifeo-debuggers"] = {"status": "problem", "evidence": sorted(H.IFEO_BLOCKS),
                           "delete": {ifeo + "\\" + e + "\\Debugger": d for e, d in H.IFEO_BLOCKS.items()},
                           "left_alone": {ifeo + "\\" + H.IFEO_USER[0] + "\\Debugger": H.IFEO_USER[1],
                                          ifeo + "\\UsoClient.exe\\MitigationOptions": "0001000000000000"}}
    c["update-pause"] = {"status": "problem", "evidence": ["PauseUpdatesExpiryTime", "2051-12-31", "FlightSettingsMaxPauseDays", "PausedQualityStatus"],
                         "delete": ["PauseUpdatesExpiryTime", "PauseFeatureUpdatesEndTime", "PauseQualityUpdatesEndTime",
                                    "FlightSettingsMaxPauseDays", "PausedQualityStatus", "PausedFeatureStatus"],
                         "left_alone": ["ActiveHoursStart", "ActiveHoursEnd"]}
    c["renamed-binaries"] = {"status": "problem",
                             "evidence": ["wuaueng_BAK.dll", "Wu10Man_WaaSMedicSvc.dll", "WaaSMedicSvc ServiceDll"],
                             "rename": {"Windows/System32/" + v: "Windows/System32/" + k for k, v in T.RENAMED_BINARIES.items()},
                             "set": {"SYSTEM\\%s\\Services\\WaaSMedicSvc\\Parameters\\ServiceDll" % cs: "%SystemRoot%\\System32\\WaaSMedicSvc.dll"}}
    tasks = "Windows/System32/Tasks/Microsoft/Windows/UpdateOrchestrator/"
    c["update-tasks"] = {"status": "problem", "evidence": [T.TASK_RENAMED[1], T.TASK_DISABLED],
                         "rename": {tasks + T.TASK_RENAMED[1]: tasks + T.TASK_RENAMED[0]},
                         "reported": [tasks + T.TASK_DISABLED]}
    c["group-policy-file"] = {"status": "problem", "path": "Windows/System32/GroupPolicy/Machine/Registry.pol",
                              "evidence": ["Registry.pol", "gpt.ini"] + [e[1] for e in T.GP_BLOCKS],
                              "entries": [list(e) for e in T.gp_entries(True)],
                              "remove": [list(e) for e in T.GP_BLOCKS], "keep": [list(e) for e in T.GP_KEEP],
                              "gpt_ini": {"path": "Windows/System32/GroupPolicy/gpt.ini", "version": T.GPT_INI_VERSION,
                                          "version_after_fix": T.GPT_INI_VERSION + 1}}
    return c


def proxy(prof):
    if prof == "broken-win11":
        v = hexval(H.winhttp("127.0.0.1:8888", "<local>"))
        return {"status": "problem", "default_fix": True,
                "values": {"SOFTWARE\\" + CONN + "\\WinHttpSettings": {"proxy": "127.0.0.1:8888", "bypass": "<local>", "hex": v},
                           "SOFTWARE\\WOW6432Node\\" + CONN + "\\WinHttpSettings": {"proxy": "127.0.0.1:8888", "bypass": "<local>", "hex": v}},
                "fix_value_hex": DIRECT}
    if prof == "broken-win10":
        v = hexval(H.winhttp("proxy.contoso.local:3128", "*.contoso.local;<local>"))
        return {"status": "info", "default_fix": False, "opt_in": "proxy",
                "values": {"SOFTWARE\\" + CONN + "\\WinHttpSettings": {"proxy": "proxy.contoso.local:3128",
                                                                      "bypass": "*.contoso.local;<local>", "hex": v}},
                "direct": ["SOFTWARE\\WOW6432Node\\" + CONN + "\\WinHttpSettings"],
                "fix_value_hex": DIRECT,
                "status_note": "not loopback: reported (info, so that diagnose after a default fix is clean); reset only with opt-in proxy"}
    return {"status": "ok", "values": {}, "direct": ["SOFTWARE\\" + CONN + "\\WinHttpSettings",
                                                     "SOFTWARE\\WOW6432Node\\" + CONN + "\\WinHttpSettings"]}


def wu_policies(prof):
    k = "SOFTWARE\\" + POL
    if prof == "broken-win11":
        return {"status": "problem", "key": k,
                "delete": {"WUServer": "http://127.0.0.1:8530", "WUStatusServer": "http://127.0.0.1:8530",
                           "DisableWindowsUpdateAccess": 1, "DoNotConnectToWindowsUpdateInternetLocations": 1,
                           "SetDisableUXWUAccess": 1, "AU\\UseWUServer": 1, "AU\\NoAutoUpdate": 1},
                "left_alone": {"ElevateNonAdmins": 0, "AU\\AUOptions": 2}, "wsus": None}
    if prof == "broken-win10":
        return {"status": "problem", "key": k,
                "delete": {"UpdateServiceUrlAlternate": "  ", "AU\\NoAutoUpdate": 1},
                "wsus": {"WUServer": "http://wsus.contoso.local:8530", "WUStatusServer": "http://wsus.contoso.local:8530",
                         "AU\\UseWUServer": 1},
                "left_alone": {"TargetGroup": "Workstations", "TargetGroupEnabled": 1},
                "status_note": "a real WSUS server: reported, removed only with opt-in wsus; AU\\UseWUServer=1 points at that real server, so it belongs to the wsus opt-in too (the catalogue deletes UseWUServer only 'with such a server', i.e. a bogus one)"}
    return {"status": "ok", "key": k, "key_present": False, "delete": {}}


def logs(prof):
    broken = prof.startswith("broken")
    v11 = prof.endswith("win11")
    kb = "KB5043076" if v11 else "KB5043064"
    build = "22621" if v11 else "19041"
    ubr = 4169 if v11 else 3803
    pkg = "Package_for_RollupFix~31bf3856ad364e35~amd64~~%s.%d.1.13" % (build, ubr)
    comp = "amd64_microsoft-windows-wuaueng_31bf3856ad364e35_10.0.%s.%d_none_%s" % (build, ubr, T.h("wuaueng" + prof))
    d = {
        "Windows/Logs/CBS/CBS.log": {"encoding": "ascii", "line_ending": "CRLF"},
        "Windows/Logs/CBS/CbsPersist_20240910081530.log": {"encoding": "ascii", "line_ending": "CRLF"},
        "Windows/Logs/DISM/dism.log": {"encoding": "ascii", "line_ending": "CRLF"},
        SD + "/ReportingEvents.log": {"encoding": "utf-16le-bom", "line_ending": "CRLF", "format": "tab-separated"},
        "Windows/Panther/setuperr.log": {"encoding": "ascii"},
        "Windows/Logs/WindowsUpdate": {"etl_files": 3, "note": "names real, contents zero-filled placeholders (presence only)"},
        "Windows/System32/winevt/Logs/System.evtx": {"present": False, "note": "no real EVTX could be produced here"},
    }
    if v11:
        d["Windows/WindowsUpdate.log"] = {"present": True, "note": "the Windows 10/11 stub pointing at Get-WindowsUpdateLog; no HRESULT"}
    else:
        d["Windows/WindowsUpdate.log"] = {"present": False}
    if broken:
        d["Windows/Logs/CBS/CBS.log"].update({
            "lines_with_0x80070002": 4, "hresult_lines_0x80070002": 3,
            "failed_to_find_file": [comp + "\\wuaueng.dll"], "failing_package": pkg, "kb": kb,
            "last_failure": "2024-09-12 10:15:32"})
        if not v11:
            d["Windows/Logs/CBS/CBS.log"]["error_log_full"] = "0x800719e4"
        d["Windows/Logs/CBS/CbsPersist_20240910081530.log"].update({
            "hresult_lines_0x80070002": 1, "failed_to_find_file": [comp + "\\wups2.dll"]})
        d["Windows/System32/LogFiles/Srt/SrtTrail.txt"] = {
            "encoding": "utf-16le-bom", "line_ending": "CRLF",
            "root_cause": "A patch is preventing the system from starting.",
            "repair_action": "Uninstall latest quality update", "error": "0x80070002"}
        d["Windows/Logs/DISM/dism.log"]["lines_with_0x80070002"] = 1
        d[SD + "/ReportingEvents.log"].update({"failures": [{"kb": kb, "hresult": "80070002", "date": "2024-09-12"}]})
        d["Windows/System32/catroot2/dberr.txt"] = {"lines_with_0x80070002": 2}
        if not v11:
            d["Windows/Panther/setuperr.log"].update({"lines_with_0x80070002": 2})
        else:
            d["Windows/Panther/setuperr.log"]["size"] = 0
    else:
        d["Windows/System32/LogFiles/Srt/SrtTrail.txt"] = {"present": False}
        d[SD + "/ReportingEvents.log"]["failures"] = []
        d["Windows/Panther/setuperr.log"]["size"] = 0
    return d


def checks(prof):
    broken = prof.startswith("broken")
    v11 = prof.endswith("win11")
    cs = "ControlSet002" if prof == "broken-win10" else "ControlSet001"
    sm = "SYSTEM\\%s\\Control\\Session Manager" % cs
    kb = "5043076" if v11 else "5043064"
    name = ("Windows11.0" if v11 else "Windows10.0") + "-KB%s-x64" % kb
    dl = SD + "/Download/" + T.h("dl-" + prof, 32)
    rollup = "Package_for_RollupFix~31bf3856ad364e35~amd64~~%s.%d.1.13" % ("22621" if v11 else "19041", 4169 if v11 else 3803)
    c = {}
    if broken:
        c["softwaredistribution"] = {
            "status": "problem", "path": SD, "dos_name": "SOFTWA~1",
            "evidence": {"datastore_edb": {"path": SD + "/DataStore/DataStore.edb", "size": 0},
                         "download_bad": [{"path": dl + "/" + name + ".cab", "size": 16384, "why": "zero-filled"},
                                          {"path": dl + "/" + name + ".psf", "size": 8192, "why": "zero-filled"},
                                          {"path": dl + "/" + name + "-express.cab", "size": 3, "why": "truncated: 'MSC', a cabinet starts 'MSCF'"}],
                         "logs": "see logs: 0x80070002 in CBS.log, ReportingEvents.log, dism.log, SrtTrail.txt"},
            "rename_to": SD + (".old.1" if prof == "broken-win11" else ".old"),
            "siblings": ["SoftwareDistributionX", "Softwaredistribution_bak"] + (["SoftwareDistribution.old"] if prof == "broken-win11" else [])}
        c["catroot2"] = {"status": "problem", "path": "Windows/System32/catroot2", "rename_to": "Windows/System32/catroot2.old",
                         "evidence": "same failed-installation evidence; dberr.txt with 0x80070002",
                         "siblings": ["CatRoot", "catroot2_x"]}
    else:
        c["softwaredistribution"] = {"status": "info", "path": SD, "dos_name": "SOFTWA~1",
                                     "evidence": {"datastore_edb": {"path": SD + "/DataStore/DataStore.edb", "size": 32768},
                                                  "download_bad": []}}
        c["catroot2"] = {"status": "info", "path": "Windows/System32/catroot2"}
    c["bits-queue"] = {"status": "info", "path": "ProgramData/Microsoft/Network/Downloader",
                       "files": ["qmgr.db", "qmgr.jfm"], "others_present": ["edb.chk", "edb.log"],
                       "rename_to": ["ProgramData/Microsoft/Network/Downloader/qmgr.db.old",
                                     "ProgramData/Microsoft/Network/Downloader/qmgr.jfm.old"],
                       "status_note": "no BITS failure planted in the logs"}
    c["services"] = services(prof)
    c["wu-policies"] = wu_policies(prof)
    c["hosts"] = hosts(prof)
    c["firewall"] = firewall(prof)
    c["proxy"] = proxy(prof)
    c.update(blockers(prof))
    if prof == "broken-win10":
        c["os-upgrade"] = {"status": "info", "key_present": False, "evidence": "Windows/Panther/setuperr.log: 2 upgrade errors with 0x80070002",
                           "status_note": "setuperr.log carries the upgrade-case failures; AllowOSUpgrade is opt-in only"}
    else:
        c["os-upgrade"] = {"status": "ok", "key_present": False,
                           "status_note": "no OSUpgrade key, setuperr.log empty; the 7/8.1 upgrade case is opt-in only"}
    shutdown = H.PROFILES[prof]["shutdown"]
    c["clock"] = {"status": "info", "shutdown_time": shutdown + "Z",
                  "shutdown_time_filetime": H.filetime(shutdown),
                  "key": "SYSTEM\\%s\\Control\\Windows\\ShutdownTime" % cs,
                  "time_zone": {"TimeZoneKeyName": "W. Europe Standard Time", "Bias": -60},
                  "status_note": "report only; broken-win10's shutdown time is years old (clock evidence), the others are recent. Tests should give diagnose a fixed 'now'."}
    filters = dict(H.MINIFILTERS)
    if prof == "broken-win11":
        filters.update(H.FSRM_FILTERS)
    c["minifilters"] = {"status": "info", "instances": {f: filters[f][0] for f in sorted(filters, key=str.upper)},
                        "fsrm": ["Datascrn", "Quota", "srmsvc"] if prof == "broken-win11" else []}
    if broken:
        ident = H.PENDING_XML_ID[prof]
        c["pending-xml"] = {"status": "problem", "files": ["Windows/WinSxS/pending.xml"] + (["Windows/WinSxS/pending.xml.bad"] if not v11 else []),
                            "identifier": ident, "dos_name": "PENDIN~1.XML",
                            "winsxs_entries": "3000+ siblings (B-tree directory)"}
        c["cbs-pending"] = {"status": "problem", "key": "SOFTWARE\\" + CBS,
                            "delete_keys": ["RebootPending", "PackagesPending", "RebootInProgress"],
                            "packages_pending": {rollup: 1},
                            "sessions_pending": [{"id": "31143027_2118429347", "complete": 0, "last_committed_phase": 1}],
                            "sessions_history": [{"id": "31109812_1187542871", "complete": 1}]}
        markers = {"PendingXmlIdentifier": {"type": "REG_BINARY", "text_utf16le": ident},
                   "ExecutionState": 1, "NextQueueEntryIndex": {"type": "REG_BINARY", "hex": "05000000"},
                   "AdvancedInstallersNeedResolving": 1, "StoreDirty": 1}
        if not v11:
            markers["NextQueueEntryIndexBCDB"] = {"type": "REG_BINARY", "hex": "02000000"}
        c["components-markers"] = {"status": "problem", "delete": markers,
                                   "left_alone": ["StoreFormatVersion", "StoreArchitecture"]}
        poq = "C:\\Windows\\System32\\poqexec.exe /display_progress \\SystemRoot\\WinSxS\\pending.xml"
        if v11:
            c["setup-execute"] = {"status": "problem", "value": sm + "\\SetupExecute", "entries": [poq], "remove": [poq],
                                  "result": "value removed (poqexec was its only entry)"}
            c["pending-renames"] = {"status": "problem", "values": {sm + "\\PendingFileRenameOperations": pairs(H.PFRO_11)}}
        else:
            other = "C:\\Windows\\System32\\oobe\\windeploy.exe"
            c["setup-execute"] = {"status": "problem", "value": sm + "\\SetupExecute", "entries": [poq, other], "remove": [poq],
                                  "result": "value keeps [%s]" % other}
            c["pending-renames"] = {"status": "problem", "values": {sm + "\\PendingFileRenameOperations": pairs(H.PFRO_10),
                                                                    sm + "\\PendingFileRenameOperations2": pairs(H.PFRO2_10)}}
        c["reboot-flags"] = {"status": "problem", "delete_keys": ["SOFTWARE\\" + AU + "\\RebootRequired",
                                                                  "SOFTWARE\\" + AU + "\\PostRebootReporting"]}
        c["txr"] = {"status": "problem", "default_fix": False, "opt_in": "txr",
                    "files": "Windows/System32/config/TxR/{...}.TxR.blf and .TxR.0/1/2.regtrans-ms",
                    "why": "failed-startup markers present" + ("; 0x800719e4 (ERROR_LOG_FULL) in CBS.log" if not v11 else ""),
                    "status_note": "opt-in: fix leaves it unless named"}
    else:
        c["pending-xml"] = {"status": "ok", "files": []}
        c["cbs-pending"] = {"status": "ok", "delete_keys": [], "sessions_pending": [],
                            "sessions_history": [{"id": "31109812_1187542871", "complete": 1}]}
        c["components-markers"] = {"status": "ok", "delete": {},
                                   "zero_values_not_markers": {"ExecutionState": 0, "AdvancedInstallersNeedResolving": 0}}
        c["setup-execute"] = {"status": "ok", "value": sm + "\\SetupExecute", "entries": []}
        c["pending-renames"] = {"status": "ok", "values": {}}
        c["reboot-flags"] = {"status": "ok", "delete_keys": []}
        c["txr"] = {"status": "ok", "files": "Windows/System32/config/TxR/{...}.TxR.blf and .regtrans-ms (normal, no marker)"}
    return c


def profile(prof):
    cs = {"current": 2, "default": 2, "last_known_good": 1, "sets": ["ControlSet001", "ControlSet002"],
          "never_write": ["ControlSet001"]} if prof == "broken-win10" else \
         {"current": 1, "default": 1, "last_known_good": 1, "sets": ["ControlSet001", "ControlSet002"],
          "never_write": ["ControlSet002"]}
    t = T.build(prof, None, None, dry=True)
    names = {"default_namespace": "POSIX (ntfs-3g creates names so)",
             "dos_names": {rel: ("Win32 & DOS (a single name: ntfs-3g merged it)" if dos == rel.rsplit("/", 1)[-1].upper()
                                 else "Win32 + DOS " + dos) for rel, dos in t.dos},
             "non_ascii": ["Users/Ünïcødé", "Users/Пользователь", "Windows/Ünïcødé-тест.txt"]}
    return {"windows": WIN[prof], "select": cs, "names": names, "checks": checks(prof), "logs": logs(prof),
            "hives": {"Windows/System32/config/" + h: {"logs": [h + ".LOG1 (0 bytes)", h + ".LOG2 (0 bytes)"], "dirty": False}
                      for h in ("SYSTEM", "SOFTWARE", "COMPONENTS", "DEFAULT", "SAM", "SECURITY")}}


def vol(index, start, ss, mib, typ, name, content, **kw):
    d = {"index": index, "start_sector": start, "offset": start * ss, "size": mib * MIB, "type": typ, "name": name,
         "content": content}
    d.update(kw)
    return d


def serial(tag, n):
    return "%08X%08X" % (0x1E2D3C4B + tag, 0x5A690000 + n)


def gpt(tag, ss, prof, rec, diskguid):
    spm = MIB // ss
    esp = 36 if ss == 512 else 32
    s1 = spm
    s2 = s1 + esp * spm
    s3 = s2 + 16 * spm
    s4 = s3 + 96 * spm
    total = s4 + (16 * spm if rec else 0) + spm
    vols = [vol(1, s1, ss, esp, "EFI System", "EFI system partition", "fat",
                filesystem="fat32" if ss == 512 else "fat16", files=["EFI/Microsoft/Boot/BCD (a regf hive)", "EFI/Microsoft/Boot/bootmgfw.efi", "EFI/Boot/bootx64.efi"]),
            vol(2, s2, ss, 16, "Microsoft reserved", "Microsoft reserved partition", "empty"),
            vol(3, s3, ss, 96, "Basic data", "Basic data partition", "ntfs", label="Windows", serial=serial(tag, 3),
                windows=True, hidden_sectors=s3)]
    if rec:
        vols.append(vol(4, s4, ss, 16, "Windows Recovery", "Basic data partition", "ntfs", label="", serial=serial(tag, 4),
                        gpt_attributes="0x8000000000000001", files=["Recovery/WindowsRE/ReAgent.xml"]))
    return {"kind": "disk", "format": "raw", "table": "gpt", "sector_size": ss, "size": total * ss,
            "disk_guid": diskguid, "volumes": vols, "windows_volume": 3, "profile": prof, "refusal": None,
            "logfile": "clean 1.1", "volume_flags": "0x0000", "exit_code": 0 if prof.startswith("healthy") else 1}


def main():
    images = {}
    images["broken-gpt.img"] = gpt(1, 512, "broken-win11", True, "5B4E1F0A-7C3D-4E2B-9A81-0D6C2F4B3A01")
    images["broken-gpt.img"]["notes"] = ["Windows\\SoftwareDistribution.old already exists: the rename must go to SoftwareDistribution.old.1"]
    images["healthy-gpt.img"] = gpt(2, 512, "healthy-win11", True, "5B4E1F0A-7C3D-4E2B-9A81-0D6C2F4B3A02")
    images["healthy-gpt.img"]["notes"] = ["hiberfil.sys (64 KiB) with a zeroed header: not hibernated, not a refusal"]
    images["broken-4kn.img"] = gpt(3, 4096, "broken-win11", False, "5B4E1F0A-7C3D-4E2B-9A81-0D6C2F4B3A03")
    images["broken-4kn.img"]["notes"] = ["4096-byte logical sectors (GPT header at byte 4096, NTFS bytes/sector 4096); no Recovery partition; a FAT16 ESP (FAT32 needs 256 MiB at 4 KiB sectors)",
                                         "same tree and hives as broken-gpt (profile broken-win11)"]
    images["broken-mbr.img"] = {
        "kind": "disk", "format": "raw", "table": "mbr", "sector_size": 512, "size": (2048 + 32768 + 196608 + 2048) * 512,
        "disk_signature": "0x5ee1a9d3",
        "volumes": [vol(1, 2048, 512, 16, "NTFS/exFAT/HPFS (0x07)", "", "ntfs", label="System Reserved", active=True,
                        serial=serial(4, 1), files=["Boot/BCD (a regf hive)", "bootmgr", "BOOTNXT"]),
                    vol(2, 34816, 512, 96, "NTFS/exFAT/HPFS (0x07)", "", "ntfs", label="", serial=serial(4, 2), windows=True,
                        hidden_sectors=34816)],
        "windows_volume": 2, "profile": "broken-win10", "refusal": None,
        "logfile": "empty (all 0xFF, as ntfs-3g leaves it; ntfs-3g treats it as clean)", "volume_flags": "0x0000",
        "exit_code": 1,
        "notes": ["Select\\Current=2: the running control set is ControlSet002; ControlSet001 is LastKnownGood (healthy) and must never be written",
                  "a real WSUS server and a corporate proxy: reported, fixed only with opt-in wsus / proxy",
                  "PendingFileRenameOperations and PendingFileRenameOperations2; SetupExecute with two entries; pending.xml and pending.xml.bad",
                  "no Windows\\SoftwareDistribution.old: the rename goes to SoftwareDistribution.old"]}
    base = {"kind": "volume", "format": "raw", "table": "", "sector_size": 0, "size": 96 * MIB, "volumes": [
        {"index": 0, "offset": 0, "size": 96 * MIB, "type": "", "name": "", "content": "ntfs", "label": "Windows",
         "serial": serial(1, 3), "windows": True, "hidden_sectors": 108544}],
        "windows_volume": 0, "profile": "broken-win11", "logfile": "clean 1.1", "volume_flags": "0x0000"}
    images["broken-volume.img"] = dict(base, refusal=None, exit_code=1,
                                       notes=["broken-gpt's Windows partition as a bare volume (dd of partition 3)"])
    images["refuse-hibernated.img"] = dict(base, refusal="hibernated", exit_code=3,
                                           hiberfil={"path": "hiberfil.sys", "size": 65536, "starts": "hibr"},
                                           notes=["broken-volume plus hiberfil.sys whose first 4 bytes are 'hibr' (rest zero); ntfs-3g refuses rw: 'Windows is hibernated'"])
    images["refuse-dirty.img"] = dict(base, refusal="dirty", exit_code=3, volume_flags="0x0001",
                                      notes=["broken-volume with $VOLUME_INFORMATION flags 0x0001 in $Volume and in its $MFTMirr copy (ntfsinfo: 0x0001DIRTY)"])
    images["refuse-bitlocker.img"] = dict(base, refusal="bitlocker", exit_code=3,
                                          notes=["broken-volume with '-FVE-FS-' at byte 3 (OEM id); image.Volume.Content 'bitlocker'; ntfs.Open: ErrBitLocker"])
    images["refuse-bitlocker.img"]["volumes"] = [dict(base["volumes"][0], content="bitlocker")]
    images["refuse-faststartup.img"] = dict(base, refusal="fast-startup", exit_code=3, logfile="clean 2.0",
                                            notes=["broken-volume with both $LogFile restart pages at version 2.0 (restart area clean, no client in use); ntfs-3g refuses rw: 'Metadata kept in Windows cache'"])
    out = {
        "schema": 1,
        "about": "What each test image holds and the evidence planted per check id of repair-catalog.md. Generated by testimages/findings.py from the tables of mkhives.py / mktree.py; see testimages/README.md.",
        "fixed_time": "2024-09-12T10:15:32Z",
        "exit_codes": {"0": "no problem", "1": "a check is problem", "3": "fix would be refused"},
        "images": images,
        "trees": {"broken-tree.tar.gz": {"profile": "broken-win11", "kind": "directory",
                                         "note": "the Windows volume's tree as plain files (no DOS names, no NTFS metadata); mtimes 0"},
                  "healthy-tree.tar.gz": {"profile": "healthy-win11", "kind": "directory"}},
        "hives": {"hives/%s-%s.gz" % (n, h): {"profile": p, "hive": h}
                  for n, p in (("broken", "broken-win11"), ("healthy", "healthy-win11"), ("broken-win10", "broken-win10"))
                  for h in ("SYSTEM", "SOFTWARE", "COMPONENTS")},
        "profiles": {p: profile(p) for p in ("broken-win11", "healthy-win11", "broken-win10")},
    }
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
