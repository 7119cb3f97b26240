package agent

import (
	"fmt"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/engine"
)

// commitVerification turns the engine's commit report into the report's
// verification. The engine verifies every namespace (repairing documents
// FerretDB's oplog missed) and refuses to commit when differences remain,
// so a committed run is verified equal, except in mode "after", which
// reports differences found once the destination is writable.
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
	how := fmt.Sprintf("%d namespaces compared document by document at commit", cr.Namespaces)
	if c := cr.Coverage; cr.Mode == engine.VerifyContinuous && c != nil {
		how = fmt.Sprintf("%d namespaces verified while syncing and at commit (%d by background passes, %d compared in full; %d changed documents rechecked at commit)",
			cr.Namespaces, c.ByPass, len(c.InFull), c.DocumentsRechecked)
	}
	if cr.Mode == engine.VerifyAfter {
		how = fmt.Sprintf("%d namespaces compared after the destination became writable, without repair", cr.Namespaces)
	}
	parts := fmt.Sprintf("downtime %.1f s: commit point %.1f s, drain %.1f s, index restore %.1f s, verification %.1f s",
		cr.DowntimeSeconds, cr.CommitPointSeconds, cr.DrainSeconds, cr.IndexRestoreSeconds, cr.VerificationSeconds)
	v.Message = fmt.Sprintf("%s: equal; %d documents found different before repair, %d repaired; %s", how, cr.Found.Total(), cr.Repaired, parts)
	if !cr.Verified {
		v.Message = fmt.Sprintf("%s: %d documents differ; run 'livemigrate verify' for details; %s", how, cr.Found.Total(), parts)
	}
	return v
}
