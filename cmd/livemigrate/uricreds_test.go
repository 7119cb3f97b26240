package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/mdb"
)

// TestURICreds: passwords come from files or the environment into the
// connection string; a password on the command line draws a warning that
// does not repeat it.
func TestURICreds(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("fi/le?pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uriFile := filepath.Join(dir, "uri")
	if err := os.WriteFile(uriFile, []byte("mongodb://bob:fromfile1@db2:27017/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	c := &uriCreds{sourcePasswordFile: pwFile}
	got, err := c.resolve(logger, "source", "mongodb://alice@db1:27017/?replicaSet=rs")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mdb.ParseURI(got)
	if err != nil || cs.Username != "alice" || cs.Password != "fi/le?pw" {
		t.Fatalf("with password file: %q %v", got, err)
	}
	if logs.Len() != 0 {
		t.Errorf("warning without a password on the command line: %s", logs.String())
	}

	t.Setenv(envDestinationPassword, "envpw123")
	got, err = (&uriCreds{}).resolve(logger, "destination", "mongodb://carol@db3/")
	if err != nil || !strings.Contains(got, "carol:envpw123@") {
		t.Fatalf("with environment: %q %v", got, err)
	}

	got, err = (&uriCreds{}).resolve(logger, "source", "@"+uriFile)
	if err != nil || got != "mongodb://bob:fromfile1@db2:27017/" || logs.Len() != 0 {
		t.Fatalf("@file: %q %v %s", got, err, logs.String())
	}

	t.Setenv("LIVEMIGRATE_SOURCE_URI", "mongodb://dave:envuri1@db4/")
	if got, err = (&uriCreds{}).resolve(logger, "source", ""); err != nil || got != "mongodb://dave:envuri1@db4/" {
		t.Fatalf("$LIVEMIGRATE_SOURCE_URI: %q %v", got, err)
	}

	if _, err = (&uriCreds{}).resolve(logger, "source", "mongodb://eve:inflag99@db5/"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "visible to other users") || strings.Contains(logs.String(), "inflag99") {
		t.Errorf("warning for a password in the flag: %q", logs.String())
	}

	if _, err = (&uriCreds{sourcePasswordFile: pwFile}).resolve(logger, "source", "mongodb://db6/"); err == nil {
		t.Error("a password file with no user in the connection string was accepted")
	}
	if _, err = (&uriCreds{}).resolve(logger, "source", "mongodb://frank:pa/ss@db7/"); err == nil || strings.Contains(err.Error(), "pa/ss") {
		t.Errorf("unescaped password: %v", err)
	}
}
