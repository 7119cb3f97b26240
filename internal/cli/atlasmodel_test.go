package cli

import (
	"reflect"
	"strings"
	"testing"

	"go.mongodb.org/atlas-sdk/v20250312006/admin"

	"github.com/livemigrate/livemigrate/internal/api"
)

// TestAtlasModelsMirrorSDK holds the template models to the pinned Atlas Go
// SDK's: the same fields, in the same order, with the same types and JSON
// tags, so an atlas CLI template evaluates the same over ours.
func TestAtlasModelsMirrorSDK(t *testing.T) {
	for _, pair := range [][2]any{
		{LiveMigrationResponse{}, admin.LiveMigrationResponse{}},
		{LiveImportValidation{}, admin.LiveImportValidation{}},
		{TargetOrg{}, admin.TargetOrg{}},
		{LiveImportAvailableProject{}, admin.LiveImportAvailableProject{}},
		{AvailableClustersDeployment{}, admin.AvailableClustersDeployment{}},
	} {
		ours, sdk := reflect.TypeOf(pair[0]), reflect.TypeOf(pair[1])
		if ours.NumField() != sdk.NumField() {
			t.Errorf("%s: %d fields, SDK's %s has %d", ours.Name(), ours.NumField(), sdk.Name(), sdk.NumField())
			continue
		}
		for i := range ours.NumField() {
			o, s := ours.Field(i), sdk.Field(i)
			strip := func(ty reflect.Type) string {
				return strings.NewReplacer("admin.", "", "cli.", "").Replace(ty.String())
			}
			if o.Name != s.Name || strip(o.Type) != strip(s.Type) || o.Tag.Get("json") != s.Tag.Get("json") {
				t.Errorf("%s.%s %s `%s`, SDK has %s %s `%s`", ours.Name(), o.Name, o.Type, o.Tag.Get("json"), s.Name, s.Type, s.Tag.Get("json"))
			}
		}
	}
}

// TestAtlasTemplate: the atlas CLI's own describe template prints the same
// through ours, <nil> for a missing lag included.
func TestAtlasTemplate(t *testing.T) {
	f, err := ParseFormat("go-template={{.Id}} {{.Status}} {{.LagTimeSeconds}} {{.ReadyForCutover}}")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    api.Migration
		want string
	}{
		{api.Migration{ID: "m1", Status: api.MigrationWorking, LagTimeSeconds: lag(2), ReadyForCutover: true}, "m1 WORKING 2 true\n"},
		{api.Migration{ID: "m2", Status: api.MigrationNew}, "m2 NEW <nil> false\n"},
	} {
		var b strings.Builder
		if err := f.Print(&b, tc.m, nil); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("got %q, want %q", b.String(), tc.want)
		}
	}
}
