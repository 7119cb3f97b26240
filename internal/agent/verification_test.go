package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/engine"
)

func TestCommitVerificationPerNamespace(t *testing.T) {
	cr := &engine.CommitReport{Verified: true, Namespaces: 2, Repaired: 1, Verification: []engine.NamespaceCheck{
		{Namespace: "shop.orders", Matched: 99, Missing: 1, Repaired: 1, Examples: []string{`{"$numberLong":"7"}`}},
		{Namespace: "shop.carts", Matched: 10},
	}}
	v := commitVerification(cr)
	if v.Status != api.VerificationPassed {
		t.Fatalf("status %s, want PASSED", v.Status)
	}
	want := []api.NamespaceVerification{
		{Namespace: "shop.orders", Matched: 99, Missing: 1, Repaired: 1, Examples: []string{`{"$numberLong":"7"}`}},
		{Namespace: "shop.carts", Matched: 10},
	}
	if diff := cmp.Diff(want, v.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
}
