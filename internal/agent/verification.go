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
	v.Message = fmt.Sprintf("%s: equal; %d documents found different before repair, %d repaired", how, cr.Found.Total(), cr.Repaired)
	if !cr.Verified {
		v.Message = fmt.Sprintf("%s: %d documents differ; run 'livemigrate verify' for details", how, cr.Found.Total())
	}
	return v
}

// commitDowntime is the report's itemised downtime: the engine's parts and
// what its verification compared, found and repaired.
func commitDowntime(cr *engine.CommitReport) *api.Downtime {
	d := &api.Downtime{
		VerificationMode: string(cr.Mode), EngineSeconds: cr.DowntimeSeconds,
		CommitPointSeconds: cr.CommitPointSeconds, DrainSeconds: cr.DrainSeconds,
		IndexRestoreSeconds: cr.IndexRestoreSeconds, VerificationSeconds: cr.VerificationSeconds,
		DocumentsRechecked: cr.DocumentsRechecked, Repaired: cr.Repaired,
		FoundBeforeRepair: api.DifferenceCounts{Missing: cr.Found.Missing, Extra: cr.Found.Extra, Differing: cr.Found.Differing},
		Coverage:          api.Coverage{Namespaces: cr.Namespaces}, // unknown: not claimed complete
	}
	if c := cr.Coverage; c != nil {
		d.Coverage = api.Coverage{Complete: c.Complete, Namespaces: c.Namespaces, NamespacesByPass: c.ByPass}
		for _, n := range c.InFull {
			d.Coverage.ComparedInFull = append(d.Coverage.ComparedInFull, api.NamespaceReason{Namespace: n.Namespace, Reason: n.Reason})
		}
	}
	if b := cr.Background; b != nil {
		d.Background = &api.BackgroundVerification{
			NamespacesVerified: d.Coverage.NamespacesByPass, Namespaces: d.Coverage.Namespaces,
			DocumentsCompared: b.DocumentsCompared, Passes: b.Passes, PassesInvalidated: b.PassesInvalidated,
			DocumentsRechecked: b.Rechecked, Pauses: b.Pauses, PausedSeconds: b.PausedSeconds, SlowedSeconds: b.SlowedSeconds, LastError: b.LastError,
		}
	}
	return d
}
