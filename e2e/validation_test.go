package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/livemigrate/livemigrate/internal/agent"
	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/mongotest"
)

// TestValidationFailures: each failure an operator can cause surfaces its
// own message in the validation's checks.
func TestValidationFailures(t *testing.T) {
	t.Parallel()
	cp := startControlPlane(t)
	authSrc := mongotest.StartSource(t, mongotest.WithAuth("migrator", "s3cret"))
	tlsSrc := mongotest.StartSource(t, mongotest.WithTLS())
	standalone := mongotest.StartServer(t, mongotest.Standalone())
	dst := mongotest.StartDestination(t)
	if _, err := cp.Admin.CreateCluster(t.Context(), cp.GroupID, api.ClusterRequest{Name: "dst", ConnectionString: dst.URI()}); err != nil {
		t.Fatal(err)
	}
	// The auth source's password comes from a file, not the command line.
	authURI := strings.Replace(authSrc.URI(), ":s3cret@", "@", 1)
	pwFile := filepath.Join(t.TempDir(), "pw")
	writeFile(t, pwFile, "s3cret\n")
	cp.startAgent(t, "host-a", []string{agent.PasswordEnv("tls") + "=unused"},
		"--source", "auth="+authURI, "--source-password-file", "auth="+pwFile,
		"--source", "tls="+tlsSrc.URI(), "--source", "standalone="+standalone.URI())
	cp.startAgent(t, "host-b", nil, "--source", "auth="+authSrc.URI(), "--min-mongodb-version", "8.0.0")
	for _, name := range []string{"auth", "tls", "standalone"} {
		cp.WaitDeployment(t, name)
	}

	t.Run("passes with the agent's credentials", func(t *testing.T) {
		checks := cp.Validate(t, cp.Request("host-a", "auth", "dst"))
		if checks.Status != api.ValidationSuccess {
			t.Errorf("status %s: %+v", checks.Status, checks.Checks)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		req := cp.Request("host-a", "auth", "dst")
		req.Source.ManagedAuthentication, req.Source.Username, req.Source.Password = false, "migrator", "wrong"
		checks := cp.Validate(t, req)
		if checks.Status != api.ValidationFailed || !hasCheck(checks, agent.CheckSourceAuthentication, api.CheckFailed, "authentication failed") {
			t.Errorf("checks %+v, want %s FAILED with 'authentication failed'", checks, agent.CheckSourceAuthentication)
		}
		v, err := cp.Admin.Validation(t.Context(), cp.GroupID, checks.ValidationID)
		if err != nil || !strings.Contains(v.ErrorMessage, "authentication failed") {
			t.Errorf("validation describe: %+v %v, want errorMessage with 'authentication failed'", v, err)
		}
		// The operator's view: the CLI of the same binary.
		out := cp.cli(t, "lm", "validation", "describe", "--validationId", checks.ValidationID, "--checks")
		if !strings.Contains(out, "FAILED") || !strings.Contains(out, "authentication failed") {
			t.Errorf("livemigrate lm validation describe --checks:\n%s\nwant FAILED and 'authentication failed'", out)
		}
	})
	t.Run("missing CA file", func(t *testing.T) {
		req := cp.Request("host-a", "tls", "dst")
		req.Source.SSL, req.Source.CACertificatePath = true, "/nonexistent/ca.pem"
		checks := cp.Validate(t, req)
		if checks.Status != api.ValidationFailed || !hasCheck(checks, agent.CheckSourceTLS, api.CheckFailed, "the TLS CA file /nonexistent/ca.pem does not exist on migration host host-a") {
			t.Errorf("checks %+v, want %s FAILED naming the CA file", checks, agent.CheckSourceTLS)
		}
	})
	t.Run("standalone source", func(t *testing.T) {
		checks := cp.Validate(t, cp.Request("host-a", "standalone", "dst"))
		if checks.Status != api.ValidationFailed || !hasCheck(checks, agent.CheckSourceTopology, api.CheckFailed, "convert it to a replica set first") {
			t.Errorf("checks %+v, want %s FAILED", checks, agent.CheckSourceTopology)
		}
	})
	t.Run("version below the configured minimum", func(t *testing.T) {
		checks := cp.Validate(t, cp.Request("host-b", "auth", "dst"))
		if checks.Status != api.ValidationFailed || !hasCheck(checks, agent.CheckVersions, api.CheckFailed, "older than the configured minimum version 8.0.0") {
			t.Errorf("checks %+v, want %s FAILED", checks, agent.CheckVersions)
		}
	})
}
