package controlplane_test

import (
	"net/http"
	"testing"
)

// TestVerificationModeValidated: the request's verificationMode extension
// takes continuous, full or after; anything else is a 400 naming them.
func TestVerificationModeValidated(t *testing.T) {
	e := newEnv(t)
	u, p := e.creds("owner")
	body := func(mode string) []byte {
		return []byte(`{"source":{"clusterName":"rs0","groupId":"` + e.sourceGroupID + `","managedAuthentication":false,"ssl":false},` +
			`"destination":{"clusterName":"dest","groupId":"` + e.groupID + `","hostnameSchemaType":"PUBLIC"},"migrationHosts":["host-a"],` +
			`"verificationMode":"` + mode + `"}`)
	}
	path := "/api/atlas/v2/groups/" + e.groupID + "/liveMigrations/validate"
	st, env := e.raw("POST", path, u, p, body("fast"))
	if st != http.StatusBadRequest || env.ErrorCode != "INVALID_ENUM_VALUE" {
		t.Errorf("verificationMode fast: %d %+v, want 400 INVALID_ENUM_VALUE", st, env)
	}
	if st, env := e.raw("POST", path, u, p, body("full")); st >= 400 {
		t.Errorf("verificationMode full: %d %+v, want accepted", st, env)
	}
}
