package verify

// LiveCoverage is how far the background verifier has come: namespaces
// whose pass finished and still holds, of those it knows (the source's
// collections as last listed, and any a change event named), and the
// documents changed since their comparison, to be compared again.
type LiveCoverage struct {
	Verified   int
	Namespaces int
	ToRecheck  int64
}

// Coverage returns the background verifier's coverage so far.
func (l *Live) Coverage() LiveCoverage {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := LiveCoverage{Namespaces: len(l.ns)}
	for _, st := range l.ns {
		if st.done {
			c.Verified++
			c.ToRecheck += st.changed.size()
		}
	}
	return c
}
