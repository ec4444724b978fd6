package backupsel

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzTar builds a tar from entries for the seed corpus.
func fuzzTar(entries ...*tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if h.Mode == 0 {
			h.Mode = 0o600
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzRestoreTar feeds arbitrary bytes to the extractor Restore uses and
// checks it never panics and never writes outside its target: afterwards the
// parent directory holds only the target, and every symbolic link inside it
// resolves inside it (or is the tablespace link to the mapped directory).
func FuzzRestoreTar(f *testing.F) {
	f.Add(fuzzTar(&tar.Header{Name: "PG_VERSION", Typeflag: tar.TypeReg, Size: 3}))
	f.Add(fuzzTar(&tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 3}))
	f.Add(fuzzTar(&tar.Header{Name: "/abs", Typeflag: tar.TypeReg, Size: 3}))
	f.Add(fuzzTar(&tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: ".."},
		&tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(fuzzTar(&tar.Header{Name: "d/", Typeflag: tar.TypeDir},
		&tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "../.."},
		&tar.Header{Name: "d/l/x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(fuzzTar(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Size: 2},
		&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "f"},
		&tar.Header{Name: "h2", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}))
	f.Add(fuzzTar(&tar.Header{Name: "pg_tblspc/16400", Typeflag: tar.TypeSymlink, Linkname: "/somewhere"},
		&tar.Header{Name: "pg_tblspc/16400/x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(fuzzTar(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "x"},
		&tar.Header{Name: "l", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(fuzzTar(&tar.Header{Name: "d/", Typeflag: tar.TypeDir},
		&tar.Header{Name: "d/up", Typeflag: tar.TypeSymlink, Linkname: ".."},
		&tar.Header{Name: "postgresql.conf", Typeflag: tar.TypeSymlink, Linkname: "d/up/../outside.conf"}))
	f.Add(fuzzTar(&tar.Header{Name: "dev", Typeflag: tar.TypeChar}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0})
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7})
	work := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, err := os.MkdirTemp(work, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		root := filepath.Join(parent, "data")
		ts := filepath.Join(parent, "data", "ts-dest")
		if err := os.Mkdir(root, 0o700); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		x := newExtractor(&Backup{}, RestoreOptions{}, 4096)
		x.tree.dirs[root] = true
		x.tsDest = map[uint32]string{16400: ts}
		var src io.Reader = bytes.NewReader(data)
		if len(data) > 0 && data[len(data)-1]&1 == 1 {
			src = struct{ io.Reader }{src} // exercise the non-seeking path too
		}
		r, _, closer, err := tarStream(src, 4096, true)
		if err == nil {
			x.startWriters(ctx, 0)
			_ = x.extract(ctx, r, &archiveRun{name: "fuzz.tar", target: root, role: RoleBase})
			_ = x.finishWriters()
			closer.Close()
		}
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "data" {
			t.Fatalf("wrote outside the target: %v", entries)
		}
		realRoot, err := resolvePath(root, 0)
		if err != nil {
			t.Fatal(err)
		}
		inside := func(p string) bool { return p == realRoot || strings.HasPrefix(p, realRoot+"/") }
		err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			switch {
			case info.Mode()&os.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				if p == filepath.Join(root, "pg_tblspc", "16400") && target == ts {
					return nil
				}
			case info.Mode().IsRegular(), info.IsDir():
			default:
				t.Fatalf("%s: special file %v restored", p, info.Mode())
			}
			// Resolve through every link on the way, as the kernel would
			// when something later opens p for writing.
			resolved, err := resolvePath(p, 0)
			if err != nil {
				return nil // a link loop: nothing can be written through it
			}
			if !inside(resolved) {
				t.Fatalf("%s resolves to %s, outside the target %s", p, resolved, realRoot)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

var errLinkLoop = errors.New("too many levels of symbolic links")

// resolvePath is filepath.EvalSymlinks that also resolves dangling links: the
// part of p from the first missing component on is joined as text, which is
// where a file created through p would land.
func resolvePath(p string, depth int) (string, error) {
	if depth > 40 {
		return "", errLinkLoop
	}
	// Split without cleaning: "l/.." must go to the parent of l's target,
	// not back to where l is.
	parts := strings.Split(p, "/")
	cur := "/"
	for i, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, part)
		info, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{cur}, parts[i:]...)...), nil
		}
		if err != nil {
			return "", err
		}
		if info.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = cur + "/" + target
		}
		if cur, err = resolvePath(target, depth+1); err != nil {
			return "", err
		}
	}
	return cur, nil
}

// FuzzParseName checks the name parser never panics and that what it accepts
// round-trips.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"PostgreSQL_T20261124090000", "PostgreSQL_T20261124.zip", "PostgreSQL_T2026133",
		"PostgreSQL_T20261301000000", "postgresql_t20261124.ZIP", "PostgreSQL_T", "", "PostgreSQL_T.zip", "PostgreSQL_T-2026112409000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		layout, tm, ok, reason := parseName(name)
		if !ok {
			return
		}
		if reason != "" {
			t.Fatalf("ok with reason %q", reason)
		}
		want := "PostgreSQL_T" + tm.Format("20060102150405")
		if layout == LayoutZip {
			want = "PostgreSQL_T" + tm.Format("20060102") + ".zip"
		}
		if want != name {
			t.Fatalf("parseName(%q) accepted, round-trips to %q", name, want)
		}
	})
}

// FuzzParseManifest checks the manifest parser never panics.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{ \"Path\": \"a\", \"Size\": 1, \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"00000000\" }\n],\n\"Manifest-Checksum\": \"00\"}\n"))
	f.Add([]byte("{\"PostgreSQL-Backup-Manifest-Version\": 2, \"Files\": [{\"Encoded-Path\": \"zz\"}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err == nil && m == nil {
			t.Fatal("nil manifest without error")
		}
	})
}
