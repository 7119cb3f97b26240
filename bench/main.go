// Command bench measures livemigrate against simple baselines on real
// FerretDB servers. Usage:
//
//	go run ./bench copy|verify|cdc|verifymodes|downtime|oplogreads|soak|auth|idlookup [flags]
//
// It prints a table and writes JSON under bench/out/.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench copy|verify|cdc|verifymodes|downtime|oplogreads|soak|auth|idlookup [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "copy":
		err = copyBench(os.Args[2:])
	case childCommand:
		err = copyChild(os.Args[2:])
	case "verify":
		err = verifyBench(os.Args[2:])
	case "cdc":
		err = cdcBench(os.Args[2:])
	case "downtime":
		err = downtimeBench(os.Args[2:])
	case "oplogreads":
		err = oplogReadsBench(os.Args[2:])
	case "soak":
		err = soakBench(os.Args[2:])
	case "verifymodes":
		err = verifyModesBench(os.Args[2:])
	case "auth":
		err = authBench(os.Args[2:])
	case "idlookup":
		err = idLookupBench(os.Args[2:])
	case verifyChildCommand:
		err = verifyChild(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q (want copy, verify, cdc, verifymodes, downtime, oplogreads, soak, auth or idlookup)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// writeBenchJSON writes v to bench/out/<name>-<UTC time>.json.
func writeBenchJSON(name string, v any) error {
	out := filepath.Join("bench", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(out, name+"-"+time.Now().UTC().Format("20060102T150405Z")+".json")
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return os.WriteFile(path, b, 0o644)
}

// positiveList parses a flag's comma-separated list of positive numbers
// ("25000,50000"); anything else is an error naming the flag.
func positiveList[T int | float64](flagName, s string) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		var v T
		var rest string
		if n, _ := fmt.Sscan(strings.TrimSpace(f), &v, &rest); n != 1 || v <= 0 {
			return nil, fmt.Errorf("%s %q: want positive numbers separated by commas", flagName, s)
		}
		out = append(out, v)
	}
	return out, nil
}
