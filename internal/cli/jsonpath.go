package cli

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// step is one segment of a JSONPath: a member name, an array index, or a
// wildcard over an object's values or an array's elements.
type step struct {
	name     string
	index    int
	isIndex  bool
	wildcard bool
}

// parseJSONPath parses the JSONPath subset -o json-path accepts: an optional
// leading "$", then ".name", ".*", "[n]" (negative counts from the end),
// "[*]", "['name']" or "[\"name\"]".
func parseJSONPath(expr string) ([]step, error) {
	s := strings.TrimSpace(expr)
	s = strings.TrimPrefix(s, "$")
	var steps []step
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			if strings.HasPrefix(s, ".") {
				return nil, fmt.Errorf("json-path %q: recursive descent (..) is not supported", expr)
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
				steps = append(steps, step{wildcard: true})
			} else {
				steps = append(steps, step{name: name})
			}
		case '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return nil, fmt.Errorf("json-path %q: missing ]", expr)
			}
			in := strings.TrimSpace(s[1:end])
			s = s[end+1:]
			switch {
			case in == "*":
				steps = append(steps, step{wildcard: true})
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				steps = append(steps, step{name: in[1 : len(in)-1]})
			default:
				n, err := strconv.Atoi(in)
				if err != nil {
					return nil, fmt.Errorf("json-path %q: [%s] is not an index, * or a quoted name", expr, in)
				}
				steps = append(steps, step{index: n, isIndex: true})
			}
		default:
			if len(steps) == 0 && expr[0] != '$' {
				// Accept "status" as shorthand for "$.status".
				s = "." + s
				continue
			}
			return nil, fmt.Errorf("json-path %q: unexpected %q", expr, s[:1])
		}
	}
	return steps, nil
}

var errNoMatch = errors.New("no match")

// evalJSONPath applies steps to doc (the generic JSON form of a value).
func evalJSONPath(doc any, steps []step) ([]any, error) {
	cur := []any{doc}
	for _, st := range steps {
		var next []any
		for _, v := range cur {
			switch x := v.(type) {
			case map[string]any:
				switch {
				case st.wildcard:
					for _, k := range slices.Sorted(maps.Keys(x)) {
						next = append(next, x[k])
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
		}
		cur = next
	}
	if len(cur) == 0 {
		return nil, errNoMatch
	}
	return cur, nil
}
