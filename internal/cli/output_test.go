package cli

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/api"
)

func lag(n int64) *int64 { return &n }

var sample = api.Page[api.Migration]{TotalCount: 2, Results: []api.Migration{
	{ID: "m1", Status: api.MigrationWorking, LagTimeSeconds: lag(3), ReadyForCutover: true, MigrationHosts: []string{"host-a"}},
	{ID: "m2", Status: api.MigrationNew, MigrationHosts: []string{"host-b", "host-c"}},
}}

func TestFormats(t *testing.T) {
	tmplFile := filepath.Join(t.TempDir(), "t.tmpl")
	if err := os.WriteFile(tmplFile, []byte("{{range .Results}}{{.Id}} {{.Status}}\n{{end}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ format, want string }{
		{"", "default\n"},
		{"json-path=$.totalCount", "2\n"},
		{"json-path=$.results[0]._id", "\"m1\"\n"},
		{"json-path=results[-1].status", "\"NEW\"\n"},
		{"json-path=$.results[*].readyForCutover", "true\nfalse\n"},
		{"json-path=$.results[0].lagTimeSeconds", "3\n"},
		{"json-path=$['results'][1].migrationHosts", "[\n  \"host-b\",\n  \"host-c\"\n]\n"},
		{"json-path=$.results[*].migrationHosts[*]", "\"host-a\"\n\"host-b\"\n\"host-c\"\n"},
		{"go-template={{len .Results}} {{(index .Results 0).LagTimeSeconds}}", "2 3\n"},
		{"go-template={{json (index .Results 1).MigrationHosts}}", "[\"host-b\",\"host-c\"]\n"},
		{"go-template-file=" + tmplFile, "m1 WORKING\nm2 NEW\n"},
		{"json-path=$..status", "\"WORKING\"\n\"NEW\"\n"},
		{"json-path=$..migrationHosts[0]", "\"host-a\"\n\"host-b\"\n"},
		{"json-path=$.results[?(@.status == 'NEW')]._id", "\"m2\"\n"},
		{"json-path=$.results[?(@.lagTimeSeconds > 1 && @.readyForCutover == true)]._id", "\"m1\"\n"},
		{"json-path=$.results[?(@.status == \"NEW\" || @.lagTimeSeconds <= 3)]._id", "\"m1\"\n\"m2\"\n"},
		{"json-path=$.results[?(@.migrationHosts[1])]._id", "\"m2\"\n"},
		// ], || and && inside quotes (and an escaped quote) neither close the filter nor split it.
		{"json-path=$.results[?(@.status == 'a]||b' || @._id == 'm2')]._id", "\"m2\"\n"},
		{`json-path=$.results[?(@.status == 'it\'s && ]' || @._id == "m1")]._id`, "\"m1\"\n"},
		{"json-path=$..[?(@ == 'host-c')]", "\"host-c\"\n"},
		{"go-template={{range .Results}}{{.Id}} {{.Status}} {{.LagTimeSeconds}}\n{{end}}", "m1 WORKING 3\nm2 NEW <nil>\n"},
	} {
		f, err := ParseFormat(tc.format)
		if err != nil {
			t.Fatalf("ParseFormat(%q): %v", tc.format, err)
		}
		var b strings.Builder
		err = f.Print(&b, sample, func(w io.Writer) error { _, err := io.WriteString(w, "default\n"); return err })
		if err != nil {
			t.Fatalf("-o %s: %v", tc.format, err)
		}
		if diff := cmp.Diff(tc.want, b.String()); diff != "" {
			t.Errorf("-o %s (-want +got):\n%s", tc.format, diff)
		}
	}
}

func TestFormatJSON(t *testing.T) {
	f, err := ParseFormat("json")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := f.Print(&b, sample.Results[1], nil); err != nil {
		t.Fatal(err)
	}
	// The SDK model's JSON, as the atlas CLI prints it: no lag when there is none.
	want := "{\n  \"_id\": \"m2\",\n  \"migrationHosts\": [\n    \"host-b\",\n    \"host-c\"\n  ],\n  \"readyForCutover\": false,\n  \"status\": \"NEW\"\n}\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("-o json (-want +got):\n%s", diff)
	}
}

func TestFormatErrors(t *testing.T) {
	for _, s := range []string{"yaml", "json=x", "json-path", "json-path=", "json-path=$...x", "json-path=$..", "json-path=$.results[?(@.status ~ 1)]", "json-path=$.results[?@.x]", "json-path=$.a[", "json-path=$.a[x]",
		"go-template", "go-template={{.", "go-template-file=/nonexistent/t.tmpl", "table"} {
		if _, err := ParseFormat(s); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseFormat(%q) = %v, want ErrFormat", s, err)
		}
	}
	f, err := ParseFormat("json-path=$.nothing")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Print(io.Discard, sample, nil); !errors.Is(err, errNoMatch) {
		t.Errorf("json-path without a match: err = %v, want errNoMatch", err)
	}
	f, err = ParseFormat("go-template={{.Nope}}")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Print(io.Discard, sample, nil); err == nil {
		t.Error("go-template with an unknown field: no error")
	}
}

func TestTable(t *testing.T) {
	var b strings.Builder
	if err := Table(&b, []string{"ID", "LAGTIME", "STATUS"}, []string{"m1", "3", "WORKING"}, []string{"m22", "", "NEW"}); err != nil {
		t.Fatal(err)
	}
	want := "ID    LAGTIME   STATUS\nm1    3         WORKING\nm22             NEW\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}
