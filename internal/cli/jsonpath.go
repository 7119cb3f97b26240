package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// step is one segment of a JSONPath: a member name, an array index, a
// wildcard over an object's values or an array's elements, or a filter;
// recursive applies it to the node and all its descendants (..).
type step struct {
	name      string
	index     int
	isIndex   bool
	wildcard  bool
	filter    *filterExpr
	recursive bool
}

// filterExpr is the body of [?(...)]: comparisons joined by && (binding
// tighter) and ||.
type filterExpr struct {
	or [][]comparison // or of ands
}

// comparison is "@<path> <op> <literal>", or "@<path>" alone (exists).
type comparison struct {
	path    []step
	op      string // "" for exists
	literal any    // string, json.Number, bool or nil
}

// parseJSONPath parses the JSONPath -o json-path accepts: an optional
// leading "$", then ".name", ".*", "[n]" (negative counts from the end),
// "[*]", "['name']" or "[\"name\"]", ".." before any of them (recursive
// descent), and filters "[?(@.field == 'x')]" with ==, !=, <, <=, >, >=,
// existence "[?(@.field)]", && and ||.
func parseJSONPath(expr string) ([]step, error) {
	s := strings.TrimSpace(expr)
	s = strings.TrimPrefix(s, "$")
	var steps []step
	recursive := false
	add := func(st step) {
		st.recursive = recursive
		recursive = false
		steps = append(steps, st)
	}
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			if strings.HasPrefix(s, ".") {
				if recursive {
					return nil, fmt.Errorf("json-path %q: ... is not a path", expr)
				}
				recursive = true
				if strings.HasPrefix(s[1:], "[") {
					s = s[1:]
					continue
				}
				continue
			}
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			name := s[:end]
			if name == "" {
				return nil, fmt.Errorf("json-path %q: empty member name", expr)
			}
			s = s[end:]
			if name == "*" {
				add(step{wildcard: true})
			} else {
				add(step{name: name})
			}
		case '[':
			end := closingBracket(s)
			if end < 0 {
				return nil, fmt.Errorf("json-path %q: missing ]", expr)
			}
			in := strings.TrimSpace(s[1:end])
			s = s[end+1:]
			switch {
			case in == "*":
				add(step{wildcard: true})
			case strings.HasPrefix(in, "?"):
				f, err := parseFilter(strings.TrimSpace(in[1:]))
				if err != nil {
					return nil, fmt.Errorf("json-path %q: filter [%s]: %w", expr, in, err)
				}
				add(step{filter: f})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				add(step{name: in[1 : len(in)-1]})
			default:
				n, err := strconv.Atoi(in)
				if err != nil {
					return nil, fmt.Errorf("json-path %q: [%s] is not an index, *, a filter or a quoted name", expr, in)
				}
				add(step{index: n, isIndex: true})
			}
		default:
			if len(steps) == 0 && !recursive && expr[0] != '$' {
				// Accept "status" as shorthand for "$.status".
				s = "." + s
				continue
			}
			return nil, fmt.Errorf("json-path %q: unexpected %q", expr, s[:1])
		}
	}
	if recursive {
		return nil, fmt.Errorf("json-path %q: .. must be followed by a name, * or [...]", expr)
	}
	return steps, nil
}

// closingBracket returns the index of the ] closing the [ at s[0], skipping
// nested brackets and quoted strings, or -1.
func closingBracket(s string) int {
	depth, end := 0, -1
	scanUnquoted(s, func(i int) (int, bool) {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				end = i
				return 0, true
			}
		}
		return 0, false
	})
	return end
}

// scanUnquoted calls visit with the index of each byte of s that is outside
// a '…' or "…" string (backslash escapes inside one) and not a quote; visit
// returns how many bytes to skip after it, and whether to stop.
func scanUnquoted(s string, visit func(i int) (skip int, stop bool)) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			switch c {
			case '\\':
				i++
			case quote:
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		default:
			skip, stop := visit(i)
			if stop {
				return
			}
			i += skip
		}
	}
}

// parseFilter parses "(...)" of a filter.
func parseFilter(s string) (*filterExpr, error) {
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return nil, errors.New("want ?(<condition>)")
	}
	s = s[1 : len(s)-1]
	f := &filterExpr{}
	for _, alt := range splitOutsideQuotes(s, "||") {
		var and []comparison
		for _, term := range splitOutsideQuotes(alt, "&&") {
			c, err := parseComparison(strings.TrimSpace(term))
			if err != nil {
				return nil, err
			}
			and = append(and, c)
		}
		f.or = append(f.or, and)
	}
	return f, nil
}

// splitOutsideQuotes splits s at sep where sep is not inside quotes.
func splitOutsideQuotes(s, sep string) []string {
	var out []string
	last := 0
	scanUnquoted(s, func(i int) (int, bool) {
		if !strings.HasPrefix(s[i:], sep) {
			return 0, false
		}
		out = append(out, s[last:i])
		last = i + len(sep)
		return len(sep) - 1, false
	})
	return append(out, s[last:])
}

var filterOps = []string{"==", "!=", "<=", ">=", "<", ">"}

func parseComparison(s string) (comparison, error) {
	var c comparison
	if !strings.HasPrefix(s, "@") {
		return c, fmt.Errorf("condition %q: want @<path> <op> <value> or @<path>", s)
	}
	pathEnd, op := len(s), ""
	for i := 1; i < len(s); i++ {
		if s[i] == '[' {
			if j := closingBracket(s[i:]); j > 0 {
				i += j
				continue
			}
		}
		for _, o := range filterOps {
			if strings.HasPrefix(s[i:], o) {
				pathEnd, op = i, o
				break
			}
		}
		if op != "" {
			break
		}
	}
	path := strings.TrimSpace(s[1:pathEnd])
	if strings.ContainsAny(path, " \t") {
		return c, fmt.Errorf("condition %q: want @<path> <op> <value> with op ==, !=, <, <=, >, >=", s)
	}
	steps, err := parseJSONPath("$" + path)
	if err != nil {
		return c, err
	}
	c.path = steps
	if op == "" {
		return c, nil
	}
	c.op = op
	lit := strings.TrimSpace(s[pathEnd+len(op):])
	switch {
	case len(lit) >= 2 && (lit[0] == '\'' || lit[0] == '"') && lit[len(lit)-1] == lit[0]:
		c.literal = lit[1 : len(lit)-1]
	case lit == "true", lit == "false":
		c.literal = lit == "true"
	case lit == "null":
		c.literal = nil
	default:
		if _, err := strconv.ParseFloat(lit, 64); err != nil {
			return c, fmt.Errorf("condition %q: %q is not a quoted string, number, true, false or null", s, lit)
		}
		c.literal = json.Number(lit)
	}
	return c, nil
}

func (f *filterExpr) match(v any) bool {
	for _, and := range f.or {
		ok := true
		for _, c := range and {
			if !c.match(v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (c comparison) match(v any) bool {
	got, err := evalJSONPath(v, c.path)
	if err != nil {
		return false
	}
	if c.op == "" {
		return true
	}
	a := got[0]
	if an, ok := a.(json.Number); ok {
		bn, ok := c.literal.(json.Number)
		if !ok {
			return c.op == "!="
		}
		x, _ := an.Float64()
		y, _ := bn.Float64()
		return compareOrdered(x, y, c.op)
	}
	if as, ok := a.(string); ok {
		bs, ok := c.literal.(string)
		if !ok {
			return c.op == "!="
		}
		return compareOrdered(as, bs, c.op)
	}
	switch c.op {
	case "==":
		return a == c.literal
	case "!=":
		return a != c.literal
	}
	return false
}

func compareOrdered[T float64 | string](x, y T, op string) bool {
	switch op {
	case "==":
		return x == y
	case "!=":
		return x != y
	case "<":
		return x < y
	case "<=":
		return x <= y
	case ">":
		return x > y
	case ">=":
		return x >= y
	}
	return false
}

var errNoMatch = errors.New("no match")

// evalJSONPath applies steps to doc (the generic JSON form of a value).
func evalJSONPath(doc any, steps []step) ([]any, error) {
	cur := []any{doc}
	for _, st := range steps {
		var next []any
		for _, v := range cur {
			if st.recursive {
				for _, d := range descendants(v) {
					next = append(next, apply(d, st)...)
				}
			} else {
				next = append(next, apply(v, st)...)
			}
		}
		cur = next
	}
	if len(cur) == 0 {
		return nil, errNoMatch
	}
	return cur, nil
}

// descendants returns v and every value under it, depth first, object
// members in key order.
func descendants(v any) []any {
	out := []any{v}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out = append(out, descendants(x[k])...)
		}
	case []any:
		for _, e := range x {
			out = append(out, descendants(e)...)
		}
	}
	return out
}

// apply applies one step (without its recursion) to v.
func apply(v any, st step) []any {
	var next []any
	switch x := v.(type) {
	case map[string]any:
		switch {
		case st.wildcard:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				next = append(next, x[k])
			}
		case st.filter != nil:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				if st.filter.match(x[k]) {
					next = append(next, x[k])
				}
			}
		case !st.isIndex:
			if m, ok := x[st.name]; ok {
				next = append(next, m)
			}
		}
	case []any:
		switch {
		case st.wildcard:
			next = append(next, x...)
		case st.filter != nil:
			for _, e := range x {
				if st.filter.match(e) {
					next = append(next, e)
				}
			}
		case st.isIndex:
			i := st.index
			if i < 0 {
				i += len(x)
			}
			if i >= 0 && i < len(x) {
				next = append(next, x[i])
			}
		}
	}
	return next
}
