package agent

import (
	"fmt"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/engine"
)

// commitVerification turns the engine's commit report into the report's
// verification. The engine verifies every namespace at commit (repairing
// documents FerretDB's oplog missed) and refuses to commit when differences
// remain, so a committed run is verified equal.
func commitVerification(cr *engine.CommitReport) api.Verification {
	v := api.Verification{Status: api.VerificationPassed, Namespaces: []api.NamespaceVerification{}}
	for _, n := range cr.Verification {
		v.Namespaces = append(v.Namespaces, api.NamespaceVerification{
			Namespace: n.Namespace, Matched: n.Matched, Missing: n.Missing, Extra: n.Extra, Differing: n.Differing,
			Repaired: n.Repaired, Examples: n.Examples,
		})
	}
	if !cr.Verified {
		v.Status = api.VerificationFailed
	}
	v.Message = fmt.Sprintf("%d namespaces compared document by document at commit: equal; %d documents repaired; verification took %.1f s",
		cr.Namespaces, cr.Repaired, cr.VerificationSeconds)
	if !cr.Verified {
		v.Message = fmt.Sprintf("%d namespaces compared at commit: differences remain; run 'livemigrate verify' for details", cr.Namespaces)
	}
	return v
}
