package atomicfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgstage/pgstage/internal/atomicfile"
)

func ExampleWrite() {
	dir, _ := os.MkdirTemp("", "atomicfile")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "standby.signal")
	if err := atomicfile.Write(p, nil, 0o600); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := os.Stat(p)
	fmt.Println(st.Mode())
	// Output: -rw-------
}
