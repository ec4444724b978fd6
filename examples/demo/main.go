// Command demo will run pgstage's whole job on a throwaway local source.
//
// It is a placeholder until the stage.Linker façade lands (see CHANGELOG.md).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "demo: not yet written: the stage.Linker façade it drives has not landed; run `make test` to see each package work against real PostgreSQL")
	os.Exit(1)
}
