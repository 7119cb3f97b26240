package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
)

// ErrFormat is wrapped by every error of ParseFormat: the -o value is wrong.
var ErrFormat = errors.New("invalid output format")

// FormatHelp describes the accepted -o values, for flag usage strings.
const FormatHelp = "output format: json, json-path=<expr>, go-template=<template>, go-template-file=<path> (default: a table)"

type formatKind int

const (
	formatDefault formatKind = iota
	formatJSON
	formatJSONPath
	formatTemplate
)

// Format is how a command prints its result (-o). The zero Format prints the
// command's default table or message.
type Format struct {
	kind formatKind
	path []step
	expr string
	tmpl *template.Template
}

// ParseFormat parses an -o value: "" (default), "json", "json-path=<expr>",
// "go-template=<template>" or "go-template-file=<path>". Templates are
// text/template executed on the Atlas Go SDK's model of the response (field
// names as the atlas CLI's templates use them, e.g. {{.Id}} {{.Status}}
// {{.LagTimeSeconds}}; see AtlasModel), with a "json" function.
func ParseFormat(s string) (Format, error) {
	name, arg, hasArg := strings.Cut(s, "=")
	switch name {
	case "":
		return Format{}, nil
	case "json":
		if hasArg {
			return Format{}, fmt.Errorf("%w %q: json takes no argument", ErrFormat, s)
		}
		return Format{kind: formatJSON}, nil
	case "json-path":
		if arg == "" {
			return Format{}, fmt.Errorf("%w %q: want json-path=<expr>, e.g. json-path=$.status", ErrFormat, s)
		}
		steps, err := parseJSONPath(arg)
		if err != nil {
			return Format{}, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return Format{kind: formatJSONPath, path: steps, expr: arg}, nil
	case "go-template", "go-template-file":
		if arg == "" {
			return Format{}, fmt.Errorf("%w %q: want %s=<%s>", ErrFormat, s, name, map[string]string{"go-template": "template", "go-template-file": "path"}[name])
		}
		text := arg
		if name == "go-template-file" {
			b, err := os.ReadFile(arg)
			if err != nil {
				return Format{}, fmt.Errorf("%w: read template file: %w", ErrFormat, err)
			}
			text = string(b)
		}
		t, err := template.New("output").Funcs(template.FuncMap{"json": templateJSON}).Option("missingkey=error").Parse(text)
		if err != nil {
			return Format{}, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		return Format{kind: formatTemplate, tmpl: t}, nil
	default:
		return Format{}, fmt.Errorf("%w %q: want json, json-path=<expr>, go-template=<template> or go-template-file=<path>", ErrFormat, s)
	}
}

func templateJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// IsDefault reports whether f prints the command's default output.
func (f Format) IsDefault() bool { return f.kind == formatDefault }

// Print writes v to w in format f; the default format calls def. json,
// json-path and templates see the Atlas SDK's model of v (AtlasModel), as
// the atlas CLI's do: fields Atlas omits when empty (a missing lag) are
// absent from -o json.
func (f Format) Print(w io.Writer, v any, def func(io.Writer) error) error {
	if f.kind != formatDefault {
		v = AtlasModel(v)
	}
	switch f.kind {
	case formatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode output: %w", err)
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case formatJSONPath:
		doc, err := toJSONValue(v)
		if err != nil {
			return err
		}
		matches, err := evalJSONPath(doc, f.path)
		if err != nil {
			return fmt.Errorf("json-path %s: %w", f.expr, err)
		}
		var buf bytes.Buffer
		for _, m := range matches {
			if err := writeJSONPathValue(&buf, m); err != nil {
				return err
			}
		}
		_, err = w.Write(buf.Bytes())
		return err
	case formatTemplate:
		var buf bytes.Buffer
		if err := f.tmpl.Execute(&buf, v); err != nil {
			return fmt.Errorf("execute output template: %w", err)
		}
		if buf.Len() > 0 && !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
			buf.WriteByte('\n')
		}
		_, err := w.Write(buf.Bytes())
		return err
	default:
		return def(w)
	}
}

// toJSONValue turns v into its generic JSON form (maps, slices, json.Number…).
func toJSONValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode output: %w", err)
	}
	return out, nil
}

// writeJSONPathValue prints one match as JSON, as the atlas CLI does:
// strings quoted, numbers, booleans and null bare, objects and arrays
// indented.
func writeJSONPathValue(w io.Writer, v any) error {
	switch x := v.(type) {
	case string:
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case json.Number:
		_, err := fmt.Fprintln(w, x.String())
		return err
	case bool:
		_, err := fmt.Fprintln(w, x)
		return err
	case nil:
		_, err := fmt.Fprintln(w, "null")
		return err
	default:
		b, err := json.MarshalIndent(x, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
}

// Table writes a table with a header row, columns aligned with spaces, as
// the Atlas CLI prints them.
func Table(w io.Writer, header []string, rows ...[]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
