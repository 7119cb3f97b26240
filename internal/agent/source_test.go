package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/api"
)

func TestSourceConnection(t *testing.T) {
	s, err := ParseSource("prod-rs=mongodb://migrator@db1:27017/?replicaSet=rs0")
	if err != nil {
		t.Fatal(err)
	}
	s.Password = "p@ss"
	for _, tc := range []struct {
		name string
		src  api.MigrationSource
		want string
	}{
		{"managed", api.MigrationSource{ManagedAuthentication: true}, "mongodb://migrator:p%40ss@db1:27017/?replicaSet=rs0"},
		{"request credentials", api.MigrationSource{Username: "other", Password: "x"}, "mongodb://other:x@db1:27017/?authSource=admin&replicaSet=rs0"},
		{"tls with CA", api.MigrationSource{ManagedAuthentication: true, SSL: true, CACertificatePath: "/etc/ca.pem"}, "mongodb://migrator:p%40ss@db1:27017/?replicaSet=rs0&tls=true&tlsCAFile=%2Fetc%2Fca.pem"},
	} {
		uri, err := s.connectionFor(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, uri.Raw()); diff != "" {
			t.Errorf("%s: connection string (-want +got):\n%s", tc.name, diff)
		}
	}
	if got := PasswordEnv("prod-rs.1"); got != "LIVEMIGRATE_SOURCE_PROD_RS_1_PASSWORD" {
		t.Errorf("PasswordEnv = %s", got)
	}
	if _, err := ParseSource("no-equals"); err == nil {
		t.Error("ParseSource accepted a value without name=")
	}
}
