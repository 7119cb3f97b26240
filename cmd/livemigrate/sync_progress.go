package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/livemigrate/livemigrate/internal/migration"
)

// syncDisplay prints `livemigrate sync` progress: on a terminal one line
// rewritten in place with a bar, every half second; otherwise a plain line
// every 5 s, fit for logs and pipes. Progress is output, not logging.
type syncDisplay struct {
	w    io.Writer
	tty  bool
	last int // width of the last in-place line
}

// every is how often the display is refreshed.
func (d *syncDisplay) every() time.Duration {
	if d.tty {
		return 500 * time.Millisecond
	}
	return 5 * time.Second
}

// show prints p.
func (d *syncDisplay) show(p migration.Progress, now time.Time) {
	if !d.tty {
		fmt.Fprintln(d.w, plainLine(p, now))
		return
	}
	line := barLine(p, 24)
	pad := ""
	if n := len([]rune(line)); n < d.last {
		pad = strings.Repeat(" ", d.last-n)
	}
	d.last = len([]rune(line))
	fmt.Fprint(d.w, "\r"+line+pad)
}

// done ends the in-place line so what follows starts on a fresh one.
func (d *syncDisplay) done() {
	if d.tty && d.last > 0 {
		fmt.Fprintln(d.w)
		d.last = 0
	}
}

// plainLine is the non-terminal progress line.
func plainLine(p migration.Progress, now time.Time) string {
	cc := p.CollectionCopy
	line := fmt.Sprintf("%s  state=%s info=%q copied=%d/%d bytes collections=%d/%d lag=%ds events=%d canCommit=%v canWrite=%v",
		now.Format(time.TimeOnly), p.State, p.Phase, cc.EstimatedCopiedBytes, cc.EstimatedTotalBytes,
		cc.CollectionsCopied, cc.CollectionsTotal, p.LagTimeSeconds, p.TotalEventsApplied, p.CanCommit, p.CanWrite)
	if bg := p.Background; bg != nil {
		line += fmt.Sprintf(" verifiedInBackground=%d/%d", bg.NamespacesVerified, bg.Namespaces)
	}
	return line
}

// barLine is the terminal line: phase, a bar of width cells for the copy
// (full once it is done), then what matters in the phase.
func barLine(p migration.Progress, width int) string {
	cc := p.CollectionCopy
	frac := 0.0
	switch {
	case cc.EstimatedTotalBytes > 0:
		frac = float64(cc.EstimatedCopiedBytes) / float64(cc.EstimatedTotalBytes)
	case cc.CollectionsTotal > 0:
		frac = float64(cc.CollectionsCopied) / float64(cc.CollectionsTotal)
	}
	switch p.Phase {
	case migration.PhaseApplying, migration.PhaseCommitting, migration.PhaseVerifying, migration.PhaseCommitted:
		frac = 1
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * float64(width)) // full only when done
	bar := "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"

	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %s %3.0f%% copy", p.State, bar, frac*100)
	switch p.Phase {
	case migration.PhaseIdle, migration.PhaseStarting, migration.PhaseCopying, migration.PhaseIndexing:
		fmt.Fprintf(&b, "  %s/%s  %d/%d collections", migration.FormatBytes(cc.EstimatedCopiedBytes), migration.FormatBytes(cc.EstimatedTotalBytes), cc.CollectionsCopied, cc.CollectionsTotal)
		if p.IndexBuilding.Total > 0 {
			fmt.Fprintf(&b, "  indexes %d/%d", p.IndexBuilding.Built, p.IndexBuilding.Total)
		}
		if cc.ETASeconds > 0 {
			fmt.Fprintf(&b, "  ETA %s", time.Duration(cc.ETASeconds)*time.Second)
		}
	default:
		fmt.Fprintf(&b, "  %s  lag %ds  events %d", p.Phase, p.LagTimeSeconds, p.TotalEventsApplied)
		if bg := p.Background; bg != nil && !p.CanWrite {
			fmt.Fprintf(&b, "  verified in background %d/%d", bg.NamespacesVerified, bg.Namespaces)
		}
		switch {
		case p.CanWrite:
			b.WriteString("  canWrite")
		case p.CanCommit:
			b.WriteString("  canCommit (POST /api/v1/commit)")
		}
	}
	if p.Error != "" {
		fmt.Fprintf(&b, "  error: %s", p.Error)
	}
	return b.String()
}
