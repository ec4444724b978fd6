package snapclone

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Method is how a snapshot or clone copies the data directory.
type Method string

// The methods. The zero Method means: pick from the filesystem (Detect).
const (
	MethodAuto Method = ""
	// MethodBtrfs: the data directory is a btrfs subvolume; a snapshot is
	// a read-only subvolume snapshot, a clone a writable snapshot of it.
	MethodBtrfs Method = "btrfs"
	// MethodReflink: every file cloned with FICLONE (blocks shared until
	// written), made consistent with the base backup API.
	MethodReflink Method = "reflink"
	// MethodCopy: every file copied, made consistent with the base backup
	// API. Works anywhere; takes as long and as much space as the data.
	MethodCopy Method = "copy"
)

// fsNames maps statfs f_type magics (linux/magic.h) to names.
var fsNames = map[int64]string{
	0x9123683e: "btrfs",
	0x58465342: "xfs",
	0xef53:     "ext4", // ext2, ext3 and ext4 share the magic
	0x2fc12fc1: "zfs",
	0xca451a4e: "bcachefs",
	0x01021994: "tmpfs",
	0x794c7630: "overlay",
	0x6969:     "nfs",
	0xff534d42: "cifs",
	0x65735546: "fuse",
	0x5346544e: "ntfs",
	0x4d44:     "vfat",
}

// btrfsSubvolIno is the inode number of every btrfs subvolume's root
// directory (BTRFS_FIRST_FREE_OBJECTID).
const btrfsSubvolIno = 256

// FSType names the filesystem that holds path ("btrfs", "xfs", "ext4",
// "zfs", ...; "0x<magic>" for one this package does not name).
func FSType(path string) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "", fmt.Errorf("snapclone: statfs %s: %w", path, err)
	}
	if name, ok := fsNames[int64(st.Type)]; ok {
		return name, nil
	}
	return fmt.Sprintf("0x%x", st.Type), nil
}

// Detection is what Detect found about a data directory and a destination.
type Detection struct {
	FSType string // of the data directory
	// Subvolume: the data directory is the root of a btrfs subvolume.
	Subvolume bool
	// Reflink: FICLONE works from the data directory into the destination.
	Reflink bool
	// CrossFS: the destination is on another filesystem than the data
	// directory (FICLONE said EXDEV).
	CrossFS    bool
	DestFSType string
	// Method is what MethodAuto picks: btrfs for a subvolume, else reflink
	// where FICLONE works, else copy.
	Method Method
}

// Detect reads the filesystem of dataDir and probes, with one tiny file
// (dataDir's PG_VERSION cloned into destDir, then removed), whether FICLONE
// works from dataDir into destDir, which must exist.
func Detect(dataDir, destDir string) (Detection, error) {
	var d Detection
	var err error
	if d.FSType, err = FSType(dataDir); err != nil {
		return d, err
	}
	if d.DestFSType, err = FSType(destDir); err != nil {
		return d, err
	}
	if d.FSType == "btrfs" {
		fi, err := os.Stat(dataDir)
		if err != nil {
			return d, fmt.Errorf("snapclone: %w", err)
		}
		d.Subvolume = fi.Sys().(*syscall.Stat_t).Ino == btrfsSubvolIno
	}
	d.Reflink, d.CrossFS, err = probeReflink(filepath.Join(dataDir, "PG_VERSION"), destDir)
	if err != nil {
		return d, err
	}
	switch {
	case d.Subvolume && !d.CrossFS:
		d.Method = MethodBtrfs
	case d.Reflink:
		d.Method = MethodReflink
	default:
		d.Method = MethodCopy
	}
	return d, nil
}

// probeReflink clones src into a new file in dir. EXDEV means another
// filesystem; the other refusals (EOPNOTSUPP on ext4, EINVAL, ENOTTY on
// filesystems without the ioctl) mean no reflink.
func probeReflink(src, dir string) (ok, crossFS bool, err error) {
	in, err := os.Open(src)
	if err != nil {
		return false, false, fmt.Errorf("snapclone: probing reflink: %w", err)
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".snapclone-probe-*")
	if err != nil {
		return false, false, fmt.Errorf("snapclone: probing reflink: %w", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cerr := unix.IoctlFileClone(int(out.Fd()), int(in.Fd()))
	switch {
	case cerr == nil:
		return true, false, nil
	case errors.Is(cerr, unix.EXDEV):
		return false, true, nil
	}
	return false, false, nil
}

// resolveMethod checks that the asked-for method is possible (MethodAuto:
// picks one) and says why not, naming the filesystem and what to do.
func resolveMethod(asked Method, d Detection, dataDir, destDir string) (Method, error) {
	fsErr := func(what, hint string) error {
		return &fsError{Path: dataDir, FSType: d.FSType, What: what, Hint: hint, Err: ErrMethod}
	}
	switch asked {
	case MethodAuto:
		return d.Method, nil
	case MethodBtrfs:
		if d.FSType != "btrfs" {
			return "", fsErr("btrfs snapshots need a btrfs filesystem", "use the reflink or copy method, or put the staging on btrfs")
		}
		if !d.Subvolume {
			return "", fsErr("btrfs snapshots need the data directory to be a subvolume", "create the staging's data directory with CreateDataDir (btrfs subvolume create), or use the reflink method")
		}
		if d.CrossFS {
			return "", &fsError{Path: dataDir, FSType: d.FSType, OtherPath: destDir, OtherFSType: d.DestFSType,
				What: "a btrfs snapshot must be on the filesystem of its subvolume", Hint: "put the snapshot directory on the staging's filesystem", Err: ErrCrossFilesystem}
		}
	case MethodReflink:
		if d.CrossFS {
			return "", &fsError{Path: dataDir, FSType: d.FSType, OtherPath: destDir, OtherFSType: d.DestFSType,
				What: "reflink cannot cross filesystems", Hint: "put the destination on the same filesystem, or use the copy method", Err: ErrCrossFilesystem}
		}
		if !d.Reflink {
			return "", fsErr("this filesystem cannot clone files (FICLONE refused)", "use the copy method, or put the staging on btrfs, XFS made with reflink=1, ZFS 2.2+ or bcachefs")
		}
	case MethodCopy:
	default:
		return "", fmt.Errorf("%w: unknown method %q (btrfs, reflink, copy, or empty to detect)", ErrInvalidConfig, asked)
	}
	return asked, nil
}
