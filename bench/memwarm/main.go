// Command memwarm touches and releases memory so that the next command's
// page cache comes from memory this machine holds, and reports how long that
// took.
//
// On a virtual machine whose balloon device reports free pages to the host
// (virtio-balloon's free page reporting, as Firecracker and QEMU offer), the
// guest hands free 2 MiB blocks back a few seconds after they are freed, and
// the next write into them waits for the host to fault them in again. Any
// command that fills the page cache then pays for it: on the machine of
// bench/RESULTS.md, GNU tar's system time for one restore went from 2.4 s
// to 6.3 s. bench/backupsel_real.sh runs memwarm before each timed command
// (PGSTAGE_BENCH_MEMORY=warm), so both sides start from the same memory.
//
// Usage: memwarm [-gib N]
//
// It maps N GiB (default 4) of anonymous memory, asks for transparent huge
// pages, writes one byte per 4 KiB page, and unmaps it; the freed blocks are
// at the head of the kernel's free lists when the next command starts. The
// time printed ("memwarm: 4 GiB in 13.9 s") says how cold the memory was:
// about 0.1-0.2 s per GiB for memory freed a moment before.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	gib := flag.Int("gib", 4, "GiB of memory to touch and release")
	flag.Parse()
	if *gib < 1 || *gib > 1024 {
		fmt.Fprintf(os.Stderr, "memwarm: -gib %d: want 1 to 1024\n", *gib)
		os.Exit(2)
	}
	d, err := warm(*gib << 30)
	if err != nil {
		fmt.Fprintf(os.Stderr, "memwarm: %d GiB: %v (free memory: see /proc/meminfo)\n", *gib, err)
		os.Exit(1)
	}
	fmt.Printf("memwarm: %d GiB in %.2f s\n", *gib, d.Seconds())
}

// warm writes one byte into each page of n bytes of fresh anonymous memory
// and returns the time it took.
func warm(n int) (time.Duration, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return 0, fmt.Errorf("mmap: %w", err)
	}
	// Huge pages make the touch cost the memory, not 4 KiB page faults.
	// Refused where transparent huge pages are off: 4 KiB pages then.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	start := time.Now()
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	d := time.Since(start)
	return d, unix.Munmap(b)
}
