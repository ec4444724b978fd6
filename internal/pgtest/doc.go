// Package pgtest is pgstage's test harness: it finds the PostgreSQL binaries
// that scripts/install-postgres put on the machine, starts real primaries of
// every major version 10-18 in temporary directories, and takes real base
// backups of them in every layout and form pgstage accepts.
//
// Nothing here is a mock: every test that touches PostgreSQL runs against a
// server started by [StartPrimary].
//
// # Binaries
//
// Server binaries (initdb, pg_ctl, postgres) for each major live in
// <cache>/<major>/bin, where <cache> is $PGSTAGE_PG_CACHE, else
// /var/cache/pgstage/pg when running as root, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/pgstage/pg. Client tools (pg_basebackup,
// psql, pg_controldata, pg_verifybackup) are Debian's PostgreSQL 15 ones in
// /usr/lib/postgresql/15/bin.
//
// [Versions] reads PGSTAGE_PG_VERSIONS ("15", "10,15,18" or "10 15 18"),
// default 10 to 18. When a binary is missing, tests skip with a message that
// names it and `make test`; with PGSTAGE_REQUIRE_PG=1 (set by `make test`)
// they fail instead, so CI cannot pass by skipping.
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the tests run as root, every server
// process runs as the unprivileged OS user named by PGSTAGE_PG_USER (default
// "postgres"), and [TempDir] hands out directories that user owns.
//
// # Ports and leftovers
//
// [FreePort] hands out ports below the kernel's ephemeral range, each
// reserved by an abstract Unix socket named after it: abstract sockets live
// in the network namespace, as TCP ports do, so every test process that
// could collide on a port sees the reservation, whatever its temporary
// directory.
//
// A test process killed before its cleanup leaves its servers running.
// [TempDir] records its owner beside each directory (<dir>.pgtest-owner:
// pid, start time, boot id), and the first TempDir of every test process
// calls [Reap], which stops the servers of owners that have died (thawing
// frozen ones) and removes their directories.
//
// # A network that fails silently
//
// [NewNetns] (root only; iproute2) makes a network namespace joined to the
// test's own by a veth pair. [Netns.Move] restarts a primary inside it,
// reached at NSIP; [Netns.Cut] then drops every packet on the link with no
// reset or error to either side (a blackhole queueing discipline on both
// ends), and [Netns.Heal] lets them through again. The namespace, the link
// and the cut are removed when the test ends, passed or failed.
//
// # Backup forms per major
//
// Debian ships pg_basebackup 15 only, and pg_basebackup refuses servers newer
// than itself ("incompatible server version"). So:
//
//   - majors 10-15: pg_basebackup 15 -F t with -X stream (base.tar and
//     pg_wal.tar: [FormStream]), -X fetch (WAL inside base.tar: [FormFetch]),
//     and client-side compression gzip ([FormGzip], base.tar.gz and
//     pg_wal.tar.gz), lz4 ([FormLZ4]) and zstd ([FormZstd]); for lz4 and zstd
//     pg_basebackup 15 compresses base.tar only and leaves pg_wal.tar plain.
//     Servers 13+ add backup_manifest.
//   - majors 16-18: the same -X stream forms ([FormStream], [FormGzip],
//     [FormLZ4], [FormZstd]) taken by pgstage's own
//     [github.com/pgstage/pgstage/backupsel/basebackup], which writes the
//     files pg_basebackup would (its tests compare the two on 10-15); no
//     -X fetch form.
//   - majors 15-18: the server writes the backup itself with
//     BASE_BACKUP (TARGET 'server', WAL true, MANIFEST 'yes') on a replication
//     connection: base.tar with WAL inside, and backup_manifest ([FormServer]);
//     with COMPRESSION 'gzip' the server writes base.tar.gz ([FormServerGzip]).
//     The server bundles are built without lz4 and zstd, so those server-side
//     forms do not exist.
//
// [StartCopy] starts a restored copy and connects to it.
//
// Each form can be laid out in the three ways pgstage reads: a
// PostgreSQL_T<YYYYMMDDhhmmss> folder ([LayoutFolder]), the files directly in
// the backup path ([LayoutDirect]), or a PostgreSQL_T<YYYYMMDD>.zip with the
// files at its root, made with the zip command as the original procedure
// does ([LayoutZip]).
package pgtest
