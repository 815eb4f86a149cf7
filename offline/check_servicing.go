package offline

import (
	"fmt"
	"strings"
)

// ---------------------------------------------------------------- servicing-triggers

// The other ways Windows is told to replay a pending servicing transaction at
// boot or logon, besides SetupExecute (docs/catalogue.md, `servicing-triggers`;
// SafeBreach-Labs WindowsDowndate, update_utils.py and winlogon_utils.py):
//   - SOFTWARE\Microsoft\Windows\CurrentVersion\SideBySide\Configuration :
//     PoqexecCmdline (REG_MULTI_SZ "...\poqexec.exe /display_progress
//     \??\...\pending.xml"): poqexec replays that pending.xml;
//   - SOFTWARE\...\Component Based Servicing\Interface : ServicingInProgress
//     = 1: servicing believes an operation is running;
//   - SYSTEM\CCS\Control\Winlogon\Notifications\Components\TrustedInstaller :
//     Events (REG_SZ "CreateSession"): the TrustedInstaller logon
//     notification, which that tool sets so the update UI shows at boot.
//     Windows itself may carry it, so it is reported, never removed.
const (
	sxsConfigKey      = `Microsoft\Windows\CurrentVersion\SideBySide\Configuration`
	cbsInterfaceKey   = `Microsoft\Windows\CurrentVersion\Component Based Servicing\Interface`
	winlogonTINotifyK = `Control\Winlogon\Notifications\Components\TrustedInstaller`
)

// ServicingTriggers is `servicing-triggers`.
type ServicingTriggers struct{}

// ID implements Check.
func (ServicingTriggers) ID() string { return "servicing-triggers" }

// Case implements Check.
func (ServicingTriggers) Case() Case { return CaseStartup }

// Diagnose implements Check.
func (c ServicingTriggers) Diagnose(in *Installation) Result {
	r := newResult(c)
	sw, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	var found []string
	if k, err := openKey(sw, sxsConfigKey); err != nil {
		return failed(r, sxsConfigKey, err)
	} else if k != nil {
		v, err := value(k, "PoqexecCmdline")
		if err != nil {
			return failed(r, sxsConfigKey+`\PoqexecCmdline`, err)
		}
		if v != nil {
			if b, err := v.Data(); err == nil && !allZero(b) {
				found = append(found, "PoqexecCmdline")
				r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", sxsConfigKey, v,
					"PoqexecCmdline makes the next boot run poqexec.exe to replay a pending.xml").act("delete-value", ""))
			}
		}
	}
	n, v, err := dwordValue(sw, cbsInterfaceKey, "ServicingInProgress")
	if err != nil {
		return failed(r, cbsInterfaceKey+`\ServicingInProgress`, err)
	}
	if v != nil && n != 0 {
		found = append(found, "ServicingInProgress")
		r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", cbsInterfaceKey, v,
			"ServicingInProgress=1: the servicing stack believes an operation is still running").act("delete-value", ""))
	}
	if sys, err := in.needHive("SYSTEM"); err == nil {
		key := in.ccsKey(winlogonTINotifyK)
		if k, err := openKey(sys, key); err == nil && k != nil {
			if ev, err := value(k, "Events"); err == nil && ev != nil {
				r.Evidence = append(r.Evidence, valueEvidence("SYSTEM", key, ev,
					"TrustedInstaller logon notification (shows servicing progress at logon; Windows may set it itself: reported, not removed)"))
			}
		}
	}
	if len(found) == 0 {
		if len(r.Evidence) > 0 {
			r.Status = StatusInfo
			r.Summary = "only the TrustedInstaller logon notification is set (not a fault by itself)"
			return r
		}
		r.Summary = "no PoqexecCmdline or ServicingInProgress"
		return r
	}
	r.Status = StatusProblem
	r.Summary = "servicing is told to resume at boot: " + strings.Join(found, ", ")
	r.Fix = "delete " + strings.Join(found, " and ") + " (the pending.xml they name is handled by pending-xml)"
	return r
}

// ---------------------------------------------------------------- ifeo-debuggers

// ifeoKeys are the Image File Execution Options keys (the 64-bit view and
// the WOW64 twin). A `Debugger` value under IFEO\<exe> makes Windows start
// the debugger instead of <exe>: tools point it at systray.exe or
// taskkill.exe to stop the update programs (AveYo windows_update_toggle;
// privacy.sexy TerminateExecutableOnLaunch).
var ifeoKeys = []string{
	`Microsoft\Windows NT\CurrentVersion\Image File Execution Options`,
	`WOW6432Node\Microsoft\Windows NT\CurrentVersion\Image File Execution Options`,
}

// updateExecutables are the programs of Windows Update and servicing whose
// IFEO Debugger blocks updates.
var updateExecutables = []string{
	"UsoClient.exe", "wuauclt.exe", "MusNotification.exe", "MusNotifyIcon.exe",
	"WaaSMedicAgent.exe", "TiWorker.exe", "TrustedInstaller.exe", "SIHClient.exe",
	"wusa.exe", "upfc.exe", "UpdateNotificationMgr.exe", "WindowsUpdateBox.exe",
	"UpdateAssistant.exe", "Windows10UpgraderApp.exe", "remsh.exe", "osrrb.exe",
}

// IFEODebuggers is `ifeo-debuggers`.
type IFEODebuggers struct{}

// ID implements Check.
func (IFEODebuggers) ID() string { return "ifeo-debuggers" }

// Case implements Check.
func (IFEODebuggers) Case() Case { return CaseInstall }

// Diagnose implements Check.
func (c IFEODebuggers) Diagnose(in *Installation) Result {
	r := newResult(c)
	sw, err := in.needHive("SOFTWARE")
	if err != nil {
		return failed(r, "the SOFTWARE hive", err)
	}
	var names []string
	for _, base := range ifeoKeys {
		for _, exe := range updateExecutables {
			key := base + `\` + exe
			k, err := openKey(sw, key)
			if err != nil {
				return failed(r, key, err)
			}
			if k == nil {
				continue
			}
			v, err := value(k, "Debugger")
			if err != nil {
				return failed(r, key+`\Debugger`, err)
			}
			if v == nil {
				continue
			}
			names = append(names, exe)
			r.Evidence = append(r.Evidence, valueEvidence("SOFTWARE", key, v,
				fmt.Sprintf("%s is started as %q instead: the update program never runs", exe, valueText(v))).act("delete-value", ""))
		}
	}
	if len(names) == 0 {
		r.Summary = "no IFEO debugger on the update programs"
		return r
	}
	r.Status = StatusProblem
	r.Summary = "IFEO Debugger values stop update programs: " + strings.Join(names, ", ")
	r.Fix = "delete those Debugger values (the keys' other values and other programs' debuggers are kept)"
	return r
}
