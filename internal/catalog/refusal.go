package catalog

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// Policy says what a run does when the destination refuses a collection, a
// view or an index.
type Policy string

// Refusal policies.
const (
	// PolicyFail stops the run and lists what was refused (the default).
	PolicyFail Policy = "fail"
	// PolicySkip skips the refused namespace or index, with a warning.
	PolicySkip Policy = "skip"
)

// Validate reports an unknown policy.
func (p Policy) Validate() error {
	switch p {
	case PolicyFail, PolicySkip, "":
		return nil
	}
	return fmt.Errorf("refusal policy %q: want %q or %q", p, PolicyFail, PolicySkip)
}

// Refusal is one thing the destination would not create, with its reason.
type Refusal struct {
	NS   migration.Namespace `json:"ns"`
	Kind string              `json:"kind"` // "collection", "view", "timeseries" or "index"
	// Name is the index name (indexes only).
	Name string `json:"name,omitempty"`
	// Spec is the collection options or index spec as extended JSON.
	Spec string `json:"spec"`
	// Reason is the server's error message.
	Reason string `json:"reason"`
}

func newRefusal(ns migration.Namespace, kind, name string, spec bson.Raw, err error) Refusal {
	return Refusal{NS: ns, Kind: kind, Name: name, Spec: extJSON(spec), Reason: err.Error()}
}

func extJSON(r bson.Raw) string {
	if len(r) == 0 {
		return "{}"
	}
	b, err := bson.MarshalExtJSON(r, false, false)
	if err != nil {
		return r.String()
	}
	return string(b)
}

// String describes the refusal in one line.
func (r Refusal) String() string {
	if r.Kind == "index" {
		return fmt.Sprintf("index %s %s on %s refused: %s", r.Name, r.Spec, r.NS, r.Reason)
	}
	return fmt.Sprintf("%s %s with options %s refused: %s", r.Kind, r.NS, r.Spec, r.Reason)
}

// RefusedError is returned under PolicyFail: everything the destination
// refused, and what the user can do.
type RefusedError struct {
	Refusals []Refusal
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the destination refused %d collection(s)/index(es); exclude those namespaces, or set the refusal policy to %q to skip them with a warning:", len(e.Refusals), PolicySkip)
	for _, r := range e.Refusals {
		b.WriteString("\n  - " + r.String())
	}
	return b.String()
}

// Error makes a Refusal usable as an error (e.g. wrapped by a caller that
// stops on it); it is the same line as String.
func (r Refusal) Error() string { return r.String() }
