package verify

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of one verification run. It is plain data and
// marshals to JSON as the control plane and `livemigrate verify -o json`
// show it.
type Report struct {
	// Strategy is how documents were compared (see docs/design/verification.md).
	Strategy Strategy `json:"strategy"`
	// IgnoreFieldOrder says whether documents that differ only in the order
	// of their fields were counted as equal.
	IgnoreFieldOrder bool              `json:"ignoreFieldOrder"`
	StartedAt        time.Time         `json:"startedAt"`
	FinishedAt       time.Time         `json:"finishedAt"`
	Namespaces       []NamespaceResult `json:"namespaces"`
	// Totals sums the document counts of every namespace.
	Totals Totals `json:"totals"`
}

// Equal reports whether every namespace matched.
func (r *Report) Equal() bool {
	for i := range r.Namespaces {
		if !r.Namespaces[i].Equal() {
			return false
		}
	}
	return true
}

// Totals sums document results over namespaces.
type Totals struct {
	Namespaces        int   `json:"namespaces"`
	NamespacesDiffer  int   `json:"namespacesDiffer"`
	SourceDocuments   int64 `json:"sourceDocuments"`
	DestinationDocs   int64 `json:"destinationDocuments"`
	Matched           int64 `json:"matched"`
	Missing           int64 `json:"missing"`
	Extra             int64 `json:"extra"`
	Differing         int64 `json:"differing"`
	IndexDifferences  int   `json:"indexDifferences"`
	OptionDifferences int   `json:"optionDifferences"`
	Repaired          int64 `json:"repaired,omitempty"`
	// Found sums what was found before repair.
	Found             Counts `json:"foundBeforeRepair"`
	Rechecked         int64  `json:"rechecked"`
	ResumedNamespaces int    `json:"resumedNamespaces,omitempty"`
}

// NamespaceResult is what verification found for one namespace.
type NamespaceResult struct {
	Namespace string `json:"namespace"`
	// Source and Destination describe the collection on each side.
	Source      Side `json:"source"`
	Destination Side `json:"destination"`
	// Matched counts source documents found identical on the destination.
	Matched int64 `json:"matched"`
	// Missing counts source documents absent from the destination.
	Missing int64 `json:"missing"`
	// Extra counts destination documents absent from the source.
	Extra int64 `json:"extra"`
	// Differing counts documents present on both sides with other contents.
	Differing int64 `json:"differing"`
	// Examples lists up to Options.MaxExamples _ids of each kind, as extended JSON.
	Examples    Examples     `json:"examples"`
	IndexDiffs  []IndexDiff  `json:"indexDiffs"`
	OptionDiffs []OptionDiff `json:"optionDiffs"`
	// Rechecked counts documents re-read from both sides because they
	// differed in the first comparison.
	Rechecked int64 `json:"rechecked"`
	// Repaired counts documents re-copied or removed on the destination by
	// Options.Repair; the other counts are those after the repair.
	Repaired int64 `json:"repaired,omitempty"`
	// Found is what the comparison found before any repair (nil when it
	// found nothing).
	Found *Counts `json:"foundBeforeRepair,omitempty"`
	// Resumed says the result was taken from an earlier, interrupted run.
	Resumed bool `json:"resumed,omitempty"`
}

// Counts are documents that differ, by kind.
type Counts struct {
	Missing   int64 `json:"missing" bson:"missing"`
	Extra     int64 `json:"extra" bson:"extra"`
	Differing int64 `json:"differing" bson:"differing"`
}

// Total is the sum of the three kinds.
func (c Counts) Total() int64 { return c.Missing + c.Extra + c.Differing }

func (c *Counts) add(d *Counts) {
	if d != nil {
		c.Missing, c.Extra, c.Differing = c.Missing+d.Missing, c.Extra+d.Extra, c.Differing+d.Differing
	}
}

// Side describes one side's collection.
type Side struct {
	Exists bool `json:"exists"`
	// Type is "collection" or "view" (empty when it does not exist).
	Type  string `json:"type,omitempty"`
	Count int64  `json:"count"`
}

// Examples holds example _ids (extended JSON) of each kind of difference.
type Examples struct {
	Missing   []string `json:"missing"`
	Extra     []string `json:"extra"`
	Differing []string `json:"differing"`
}

// DiffKind says how an index or option differs.
type DiffKind string

// Kinds of catalog difference.
const (
	DiffMissing   DiffKind = "missing"   // on the source, not on the destination
	DiffExtra     DiffKind = "extra"     // on the destination, not on the source
	DiffDifferent DiffKind = "different" // on both, not the same
)

// IndexDiff is one index that differs, by name. Source and Destination are
// the normalized specs as extended JSON (empty when absent).
type IndexDiff struct {
	Name        string   `json:"name"`
	Kind        DiffKind `json:"kind"`
	Source      string   `json:"source,omitempty"`
	Destination string   `json:"destination,omitempty"`
}

// OptionDiff is one collection option (or the collection's type) that differs.
type OptionDiff struct {
	Name        string   `json:"name"`
	Kind        DiffKind `json:"kind"`
	Source      string   `json:"source,omitempty"`
	Destination string   `json:"destination,omitempty"`
}

// Equal reports whether the namespace matched in every respect.
func (n *NamespaceResult) Equal() bool {
	return n.Source.Exists == n.Destination.Exists && n.Source.Type == n.Destination.Type &&
		n.Missing == 0 && n.Extra == 0 && n.Differing == 0 && len(n.IndexDiffs) == 0 && len(n.OptionDiffs) == 0
}

func (r *Report) total() {
	t := Totals{Namespaces: len(r.Namespaces)}
	for _, n := range r.Namespaces {
		if !n.Equal() {
			t.NamespacesDiffer++
		}
		t.SourceDocuments += n.Source.Count
		t.DestinationDocs += n.Destination.Count
		t.Matched += n.Matched
		t.Missing += n.Missing
		t.Extra += n.Extra
		t.Differing += n.Differing
		t.IndexDifferences += len(n.IndexDiffs)
		t.OptionDifferences += len(n.OptionDiffs)
		t.Repaired += n.Repaired
		t.Found.add(n.Found)
		t.Rechecked += n.Rechecked
		if n.Resumed {
			t.ResumedNamespaces++
		}
	}
	r.Totals = t
}

// WriteTable writes the report as a readable table followed by the details
// of every namespace that differs.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tRESULT\tSOURCE\tDESTINATION\tMATCHED\tMISSING\tEXTRA\tDIFFERING\tINDEXES\tOPTIONS")
	for _, n := range r.Namespaces {
		res := "equal"
		if !n.Equal() {
			res = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", n.Namespace, res, sideCell(n.Source), sideCell(n.Destination),
			n.Matched, n.Missing, n.Extra, n.Differing, len(n.IndexDiffs), len(n.OptionDiffs))
	}
	t := r.Totals
	fmt.Fprintf(tw, "TOTAL (%d namespaces, %d differ)\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", t.Namespaces, t.NamespacesDiffer,
		t.SourceDocuments, t.DestinationDocs, t.Matched, t.Missing, t.Extra, t.Differing, t.IndexDifferences, t.OptionDifferences)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Namespaces {
		if n.Equal() {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\n%s:\n", n.Namespace)
		if n.Source.Exists != n.Destination.Exists || n.Source.Type != n.Destination.Type {
			fmt.Fprintf(&b, "  source %s, destination %s\n", sideWord(n.Source), sideWord(n.Destination))
		}
		ex := func(what string, total int64, ids []string) {
			if total > 0 {
				fmt.Fprintf(&b, "  %s: %d, e.g. _id %s\n", what, total, strings.Join(ids, ", "))
			}
		}
		ex("missing on destination", n.Missing, n.Examples.Missing)
		ex("extra on destination", n.Extra, n.Examples.Extra)
		ex("content differs", n.Differing, n.Examples.Differing)
		for _, d := range n.IndexDiffs {
			fmt.Fprintf(&b, "  index %q %s: source %s, destination %s\n", d.Name, d.Kind, orNone(d.Source), orNone(d.Destination))
		}
		for _, d := range n.OptionDiffs {
			fmt.Fprintf(&b, "  option %q %s: source %s, destination %s\n", d.Name, d.Kind, orNone(d.Source), orNone(d.Destination))
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	if r.Equal() {
		_, err := fmt.Fprintf(w, "\nsource and destination are equal (%s, %s)\n", r.Strategy, r.mode())
		return err
	}
	_, err := fmt.Fprintf(w, "\nsource and destination DIFFER (%s, %s)\n", r.Strategy, r.mode())
	return err
}

func (r *Report) mode() string {
	if r.IgnoreFieldOrder {
		return "field order ignored"
	}
	return "byte-exact"
}

func sideCell(s Side) string {
	if !s.Exists {
		return "-"
	}
	if s.Type != "collection" {
		return s.Type
	}
	return fmt.Sprint(s.Count)
}

func sideWord(s Side) string {
	if !s.Exists {
		return "absent"
	}
	return "is a " + s.Type
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
