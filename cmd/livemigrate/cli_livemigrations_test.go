package main

import (
	"strings"
	"testing"
)

// TestLiveMigrationsGroup: `livemigrate liveMigrations` (lm) holds Atlas's
// commands, and templates written for the atlas CLI print the same through
// ours (field names of the Atlas SDK's models, <nil> for a missing lag).
func TestLiveMigrationsGroup(t *testing.T) {
	t.Parallel()
	e := startControlPlane(t)
	help := e.run("", "liveMigrations", "--help")
	wantExit(t, help, 0)
	for _, cmd := range []string{"link", "validation", "create", "describe", "cutover", "list", "extend", "cancel", "report", "lm"} {
		if !strings.Contains(help.stdout, cmd) {
			t.Errorf("liveMigrations --help lacks %q:\n%s", cmd, help.stdout)
		}
	}
	for _, old := range []string{"migration", "validation", "link"} {
		r := e.run("", old, "list")
		wantExit(t, r, 1)
		if !strings.Contains(r.stderr, "unknown command") || !strings.Contains(r.stderr, "liveMigrations") {
			t.Errorf("livemigrate %s list: stderr %q, want an unknown command pointing to liveMigrations", old, r.stderr)
		}
	}
	val := e.run("", append(requestArgs("lm", "validation", "create"), "-p", "pw", "-o", "go-template={{.Id}} {{.GroupId}} {{.SourceGroupId}} {{.Status}}")...)
	wantExit(t, val, 0)
	vid := cliHexID.FindString(val.stdout)
	if want := vid + " " + e.groupID + " " + e.sourceGroupID + " PENDING\n"; val.stdout != want {
		t.Errorf("lm validation create printed %q, want %q", val.stdout, want)
	}
	vget := e.run("", "lm", "validation", "get", "--validationId", vid, "-o", "json-path=$.status")
	wantExit(t, vget, 0)
	if vget.stdout != "\"PENDING\"\n" {
		t.Errorf("lm validation get -o json-path=$.status printed %q, want \"PENDING\" quoted", vget.stdout)
	}
	atlasTemplate := "go-template={{.Id}} {{.Status}} {{.LagTimeSeconds}}"
	create := e.run("", append(requestArgs("lm", "create"), "-p", "pw", "-o", atlasTemplate)...)
	wantExit(t, create, 0)
	id := cliHexID.FindString(create.stdout)
	if want := id + " NEW <nil>\n"; id == "" || create.stdout != want {
		t.Errorf("lm create -o %s printed %q, want %q", atlasTemplate, create.stdout, want)
	}
	get := e.run("", "lm", "get", "--liveMigrationId", id, "-o", atlasTemplate)
	wantExit(t, get, 0)
	if get.stdout != create.stdout {
		t.Errorf("lm get printed %q, want %q", get.stdout, create.stdout)
	}
	table := e.run("", "liveMigrations", "describe", "--liveMigrationId", id)
	wantExit(t, table, 0)
	if lines := strings.Split(table.stdout, "\n"); len(lines) < 2 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "<nil>") {
		t.Errorf("lm describe table:\n%s\nwant the lag as <nil>", table.stdout)
	}
	link := e.run("", "lm", "link", "create", "-o", "go-template={{.LinkToken}}")
	wantExit(t, link, 0)
	if strings.TrimSpace(link.stdout) == "" {
		t.Errorf("lm link create -o go-template={{.LinkToken}} printed nothing")
	}
}

// TestAtlasEnvironment: the atlas CLI's environment variables are read,
// below ours; -P names the profile.
func TestAtlasEnvironment(t *testing.T) {
	e := startControlPlane(t)
	t.Setenv("MONGODB_ATLAS_PRIVATE_API_KEY", "wrong-secret")
	wrong := e.run("", "lm", "list", "-P", "default")
	wantExit(t, wrong, 1)
	if !strings.Contains(wrong.stderr, "401") {
		t.Errorf("with $MONGODB_ATLAS_PRIVATE_API_KEY wrong: %q, want a 401", wrong.stderr)
	}
	t.Setenv("LIVEMIGRATE_PRIVATE_API_KEY", e.privateKey)
	right := e.run("", "lm", "list", "-P", "default")
	wantExit(t, right, 0)
	missing := e.run("", "lm", "list", "-P", "nope")
	wantExit(t, missing, 2)
}
