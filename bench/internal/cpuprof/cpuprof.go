// Package cpuprof starts a CPU profile for the bench programs' -cpuprofile
// flag.
package cpuprof

import (
	"log"
	"os"
	"runtime/pprof"
)

// Start writes a CPU profile to path until the returned stop is called; an
// empty path profiles nothing. It exits the program if the profile cannot
// be started, as a bench program's bad flag should.
func Start(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
