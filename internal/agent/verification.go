package agent

import (
	"context"
	"fmt"

	"github.com/livemigrate/livemigrate/internal/api"
	"github.com/livemigrate/livemigrate/internal/engine"
	"github.com/livemigrate/livemigrate/internal/mdb"
	"github.com/livemigrate/livemigrate/internal/verify"
)

// verifier is implemented by an engine that verified at commit.
type verifier interface {
	VerificationReport() *verify.Report
}

// verification returns the commit's verification: the engine's when it ran
// one, else the agent compares source and destination itself (the source is
// quiet: the operator stopped writes before the cutover).
func (a *Agent) verification(ctx context.Context, r *run, eng syncEngine, opts engine.Options) (api.Verification, error) {
	if v, ok := eng.(verifier); ok {
		if rep := v.VerificationReport(); rep != nil {
			return toAPIVerification(rep), nil
		}
	}
	r.logger.Info("verifying source against destination")
	src, err := mdb.Connect(ctx, "source", opts.Source, mdb.ConnectOptions{})
	if err != nil {
		return api.Verification{}, err
	}
	defer src.Disconnect(context.WithoutCancel(ctx))
	dst, err := mdb.Connect(ctx, "destination", opts.Destination, mdb.ConnectOptions{})
	if err != nil {
		return api.Verification{}, err
	}
	defer dst.Disconnect(context.WithoutCancel(ctx))
	v, err := verify.New(verify.Options{Source: src, Destination: dst, RunID: "agent-" + r.id, MetadataDB: opts.MetadataDB}, a.opts.Logger.With("migration_id", r.id))
	if err != nil {
		return api.Verification{}, err
	}
	rep, err := v.Run(ctx)
	if err != nil {
		return api.Verification{}, fmt.Errorf("verify: %w", err)
	}
	return toAPIVerification(rep), nil
}

func toAPIVerification(rep *verify.Report) api.Verification {
	out := api.Verification{Status: api.VerificationPassed, Namespaces: []api.NamespaceVerification{}}
	for _, n := range rep.Namespaces {
		nv := api.NamespaceVerification{Namespace: n.Namespace, Matched: n.Matched, Missing: n.Missing, Extra: n.Extra, Differing: n.Differing}
		nv.Examples = append(nv.Examples, n.Examples.Missing...)
		nv.Examples = append(nv.Examples, n.Examples.Extra...)
		nv.Examples = append(nv.Examples, n.Examples.Differing...)
		out.Namespaces = append(out.Namespaces, nv)
	}
	t := rep.Totals
	if !rep.Equal() {
		out.Status = api.VerificationFailed
		out.Message = fmt.Sprintf("%d of %d namespaces differ: %d documents missing, %d extra, %d differing, %d index and %d option differences",
			t.NamespacesDiffer, t.Namespaces, t.Missing, t.Extra, t.Differing, t.IndexDifferences, t.OptionDifferences)
	} else {
		out.Message = fmt.Sprintf("%d namespaces equal: %d documents matched", t.Namespaces, t.Matched)
	}
	return out
}
