// Command bench measures livemigrate against simple baselines on real
// FerretDB servers. Usage:
//
//	go run ./bench copy|verify|cdc|auth [flags]
//
// It prints a table and writes JSON under bench/out/.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench copy|verify|cdc|auth [flags]")
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
	case "auth":
		err = authBench(os.Args[2:])
	case verifyChildCommand:
		err = verifyChild(os.Args[2:])
	default:
		err = fmt.Errorf("unknown benchmark %q (want copy, verify, cdc or auth)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
