package offline

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wuoffline/wuoffline/internal/testutil"
)

// jsonField is one Go field of a document type and the JSON name it
// marshals with.
type jsonField struct {
	typ   reflect.Type
	field string
}

func (f jsonField) String() string { return f.typ.Name() + "." + f.field }

// name returns the field's JSON name and its type with pointers and
// slices taken off (the shape a consumer reads).
func (f jsonField) name(t *testing.T) (string, reflect.Type) {
	t.Helper()
	sf, ok := f.typ.FieldByName(f.field)
	if !ok {
		t.Fatalf("%s: no such field", f)
	}
	name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
	ft := sf.Type
	for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice && ft.Elem().Kind() != reflect.Uint8 {
		ft = ft.Elem()
	}
	return name, ft
}

func field[T any](name string) jsonField {
	return jsonField{typ: reflect.TypeFor[T](), field: name}
}

// TestSameNamesAcrossDocuments: a thing that more than one of the
// diagnose, fix and undo documents carries has one JSON name and one shape
// in all of them. Each row lists every Go field that holds the thing; the
// test fails when one of them marshals under another name or type.
func TestSameNamesAcrossDocuments(t *testing.T) {
	for _, c := range []struct {
		thing  string
		name   string
		fields []jsonField
	}{
		{"the change's verb", "op", []jsonField{field[Evidence]("Op"), field[FixAction]("Op"), field[JournalOutcome]("Op")}},
		{"a path on the Windows volume", "path", []jsonField{field[Evidence]("Path"), field[FixAction]("Path"), field[HiveState]("Path"), field[LogFinding]("Path"), field[PastFailure]("Path")}},
		{"what a path is renamed to", "to", []jsonField{field[Evidence]("To"), field[FixAction]("To")}},
		{"a registry hive", "hive", []jsonField{field[Evidence]("Hive"), field[FixAction]("Hive")}},
		{"a registry key", "key", []jsonField{field[Evidence]("Key"), field[FixAction]("Key")}},
		{"a registry value name", "value", []jsonField{field[Evidence]("Value"), field[FixAction]("Value")}},
		{"a registry value type", "type", []jsonField{field[Evidence]("Type"), field[FixAction]("Type")}},
		{"the data before a change", "old", []jsonField{field[Evidence]("Old"), field[FixAction]("Old"), field[LineEdit]("Old")}},
		{"the data after a change", "new", []jsonField{field[Evidence]("New"), field[FixAction]("New"), field[LineEdit]("New")}},
		{"a line number", "line", []jsonField{field[Evidence]("Line"), field[LineEdit]("Line"), field[Excerpt]("Line")}},
		{"a check id", "id", []jsonField{field[Result]("ID"), field[FixAction]("Check"), field[CheckOutcome]("ID")}},
		{"an opt-in", "opt_in", []jsonField{field[Evidence]("OptIn"), field[Result]("OptIn")}},
		{"a byte offset", "offset", []jsonField{field[VolumeReport]("Offset"), field[FixVolume]("Offset"), field[ByteRange]("Off"), field[JournalDamage]("Offset")}},
		{"a byte length", "size", []jsonField{field[VolumeReport]("Size"), field[FixVolume]("Size"), field[ByteRange]("Len")}},
		{"a volume index", "volume", []jsonField{field[VolumeReport]("Index"), field[InstallationReport]("Volume"), field[FixVolume]("Volume"), field[JournalOutcome]("Volume"), field[InterruptedFix]("Volume")}},
		{"the Windows version", "version", []jsonField{field[InstallationReport]("Version"), field[FixVolume]("Windows")}},
		{"the target as given", "target", []jsonField{field[TargetReport]("Target"), field[FixTargetReport]("Target"), field[UndoTargetReport]("Target")}},
		{"what the target is", "kind", []jsonField{field[TargetReport]("Kind"), field[FixTargetReport]("Kind")}},
		{"the container format", "format", []jsonField{field[TargetReport]("Format"), field[FixTargetReport]("Format")}},
		{"the partition table", "table", []jsonField{field[TargetReport]("Table"), field[FixTargetReport]("Table")}},
		{"a target's outcome", "state", []jsonField{field[FixTargetReport]("State"), field[UndoTargetReport]("State")}},
		{"what was read", "io", []jsonField{field[TargetReport]("IO"), field[FixTargetReport]("IO")}},
		{"refusals", "refusals", []jsonField{field[TargetReport]("Refusals"), field[FixTargetReport]("Refusals"), field[UndoDocument]("Refusals"), field[Safety]("Refusals")}},
		{"an error", "error", []jsonField{field[TargetReport]("Error"), field[FixTargetReport]("Error"), field[UndoTargetReport]("Error"), field[VolumeReport]("Error"), field[Result]("Error"), field[FixAction]("Error"), field[JournalOutcome]("Error"), field[JournalDamage]("Err"), field[HiveState]("Error"), field[LogFinding]("Error"), field[Verification]("Error")}},
		{"what the user can do", "advice", []jsonField{field[TargetReport]("Advice"), field[FixTargetReport]("Advice"), field[Refusal]("Advice"), field[UnitOutcome]("Advice"), field[JournalDamage]("Advice"), field[InterruptedFix]("Advice")}},
		{"why something was not done", "reason", []jsonField{field[Refusal]("Reason"), field[CheckOutcome]("Reason"), field[UnitOutcome]("Reason")}},
		{"a journal file", "journal", []jsonField{field[FixVolume]("Journal"), field[JournalOutcome]("Journal"), field[JournalDamage]("Journal"), field[InterruptedFix]("Journal")}},
		{"the journal directory", "journal_dir", []jsonField{field[FixVolume]("JournalDir"), field[UndoTargetReport]("JournalDir")}},
		{"a plan unit's label", "label", []jsonField{field[ByteRange]("Label"), field[UnitOutcome]("Label")}},
		{"the exit code", "exit", []jsonField{field[TargetReport]("Exit"), field[FixTargetReport]("Exit"), field[UndoTargetReport]("Exit")}},
	} {
		var shape reflect.Type
		for i, f := range c.fields {
			name, typ := f.name(t)
			if name != c.name {
				t.Errorf("%s: %s marshals as %q, want %q", c.thing, f, name, c.name)
			}
			if i == 0 {
				shape = typ
			} else if typ != shape {
				t.Errorf("%s: %s is a %s, %s a %s", c.thing, f, typ, c.fields[0], shape)
			}
		}
	}
}

// TestNoRetiredNames: no document carries a name schema version 3 retired
// for the one the other documents use ("action" -> "op", "data" -> "old",
// "want" -> "new", "hint" -> "advice", "file" -> "path", "at" -> "offset",
// "nothing" -> "state", "bytes_read" outside "io", "version" for the tool).
func TestNoRetiredNames(t *testing.T) {
	retired := map[string]bool{"action": true, "data": true, "want": true, "hint": true, "file": true, "at": true, "nothing": true}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeFor[Header]().PkgPath() {
			return
		}
		seen[typ] = true
		for _, sf := range reflect.VisibleFields(typ) {
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if !sf.IsExported() || name == "-" || sf.Anonymous {
				continue
			}
			if retired[name] {
				t.Errorf("%s.%s marshals as retired name %q", typ.Name(), sf.Name, name)
			}
			if name == "bytes_read" && typ != reflect.TypeFor[IOStats]() {
				t.Errorf("%s.%s: bytes read are io.bytes_read", typ.Name(), sf.Name)
			}
			if name == "version" && path == "" {
				t.Errorf("%s.%s: a document's own \"version\" is the Windows version's name; the tool's is tool_version", typ.Name(), sf.Name)
			}
			walk(sf.Type, path+"."+name)
		}
	}
	for _, doc := range []reflect.Type{reflect.TypeFor[DiagnoseDocument](), reflect.TypeFor[FixDocument](), reflect.TypeFor[UndoDocument]()} {
		walk(doc, "")
	}
}

// TestEvidenceAndActionAgree: diagnose's proposed change (an evidence item
// with an op) and fix's planned action for the same check, on the broken
// test disk, marshal with the same keys and values for what they share:
// the verb, where (path and to, or hive, key, value and type) and the old
// data. A consumer can join them on those keys.
func TestEvidenceAndActionAgree(t *testing.T) {
	img := testutil.TestImage(t, "broken-gpt.img")
	diag := DiagnoseTarget(img, Options{Now: fixedNow})
	fx := FixTarget(img, FixOptions{DryRun: true, Now: fixedNow})
	if len(diag.Installations) != 1 || fx.State != FixPlanned || len(fx.Volumes) != 1 {
		t.Fatalf("diagnose: %d installations (%s); fix: %s %s", len(diag.Installations), diag.Error, fx.State, fx.Error)
	}
	asMap := func(v any) map[string]any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	proposed := map[string][]map[string]any{} // check id -> its evidence with an op
	for _, r := range diag.Installations[0].Checks {
		for _, ev := range r.Evidence {
			if ev.Op != "" {
				proposed[r.ID] = append(proposed[r.ID], asMap(ev))
			}
		}
	}
	where := []string{"op", "path", "to", "hive", "key", "value"}
	matched := 0
	for _, a := range fx.Volumes[0].Actions {
		act := asMap(a)
		id, _ := act["id"].(string)
		var ev map[string]any
		for _, e := range proposed[id] {
			same := true
			for _, k := range where {
				if _, ok := act[k]; ok && e[k] != act[k] {
					same = false
				}
			}
			if same {
				ev = e
				break
			}
		}
		if ev == nil {
			t.Errorf("fix's action %v has no evidence of check %s with the same %v (the names or values differ)", act, id, where)
			continue
		}
		matched++
		// A registry change: the type and the old data are the same.
		if _, ok := act["hive"]; ok {
			for _, k := range []string{"type", "old"} {
				if e, ok := ev[k]; ok && e != act[k] {
					t.Errorf("%s %v: evidence %s %q, action %s %q", id, act["op"], k, e, k, act[k])
				}
			}
			if act["op"] == "set" && ev["new"] == nil {
				t.Errorf("%s: set %v without new data in the evidence", id, act["value"])
			}
			// The data after the change is spelled the same in both,
			// where the evidence gives it ("(deleted)", a DWORD, ...).
			if e, ok := ev["new"]; ok && e != act["new"] {
				t.Errorf("%s %v %v: evidence new %q, action new %q", id, act["op"], act["value"], e, act["new"])
			}
		}
		// A commented-out line is a line evidence with its number and old
		// text (a rewrite's lines come from its rule, not from evidence).
		lines, _ := act["lines"].([]any)
		if act["op"] != "comment-out" {
			lines = nil
		}
		for _, l := range lines {
			l := l.(map[string]any)
			found := false
			for _, e := range proposed[id] {
				found = found || e["path"] == act["path"] && e["line"] == l["line"] && e["old"] == l["old"]
			}
			if !found {
				t.Errorf("%s: edited line %v of %v is no evidence's line and old", id, l["line"], act["path"])
			}
		}
	}
	if matched < 20 {
		t.Errorf("only %d actions matched evidence: the broken disk plans more", matched)
	}
}
