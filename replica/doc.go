// Package replica turns a data directory restored from a base backup into a
// streaming standby of its source, for every PostgreSQL major from 9.4 to
// 18, starts it, and proves that it streams.
//
// # Setting up
//
// [New] checks a [Config]; [Standby.Setup] then edits the data directory,
// every configuration edit going through [github.com/pgstage/pgstage/pgconf]
// so that the source's files keep every other byte:
//
//   - The major comes from the data directory's PG_VERSION, and must be the
//     staging binaries' (an error wrapping [ErrVersionMismatch] names both).
//   - 9.4 and 9.5 get recovery.conf (standby_mode, primary_conninfo,
//     recovery_target_timeline = 'latest') and hot_standby = off: a warm
//     standby that accepts no connections, judged by its log alone. 9.6 to
//     11: recovery.conf with hot_standby = on. 12 and later: standby.signal
//     and the settings in the configuration (added to postgresql.auto.conf
//     as pg_basebackup -R does, or edited where the
//     source set them); a leftover recovery.conf or recovery.signal is
//     removed, and stale recovery_target*, restore_command,
//     promote_trigger_file and friends are commented out, since a leftover
//     recovery target can promote a standby.
//   - port, unix_socket_directories and listen_addresses take the staging's
//     values; settings that point at the source's files (data_directory,
//     hba_file, ident_file, config_file, external_pid_file, ssl_*_file that
//     do not exist here) and the source's archiving (archive_command,
//     archive_library, archive_mode = always) are neutralised and reported
//     in the [Result]. A backup without postgresql.conf, pg_hba.conf or
//     pg_ident.conf (Debian keeps them in /etc) gets minimal ones.
//   - No file outside the data directory is ever written, even when Setup
//     runs as root: a setting to change that is in effect from such a file
//     (an include with an absolute path of the source's host, a
//     postgresql.conf that is a symbolic link out of the directory) is
//     overridden in postgresql.auto.conf, which the server reads last,
//     with the staging's value or, for what would be commented out, a
//     harmless one (an empty archive_command or recovery_target_time, ...),
//     and listed in [Result].Overridden. A data_directory or config_file
//     set from outside cannot be overridden that way: Setup then fails,
//     naming the file.
//   - The hot-standby parameters (max_connections, max_worker_processes,
//     max_wal_senders from 12, max_prepared_transactions,
//     max_locks_per_transaction) are raised to the source's values, read
//     from the backup's global/pg_control: below them a hot standby refuses
//     to start.
//   - Optionally primary_slot_name, and the slot created on the source over
//     a replication connection. A slot keeps WAL on the source while the
//     staging is down, so the staging can always catch up; it also fills the
//     source's disk if the staging never comes back: drop it then.
//
// The version differences live in one table of half-open version ranges
// (versions.go), not in scattered conditions.
//
// # Credentials and quoting
//
// The password never appears in primary_conninfo, a configuration file, a
// process argument, the servers' environment, a log line or an error. It is
// a [Password], which prints as [Redacted] in fmt, slog and JSON, so a
// [Config] can be logged whole. It goes into a password file
// created 0600 (and owned by the server's OS user) before the password is
// written, replaced atomically, with ':' and '\' escaped; primary_conninfo
// names it with passfile= (10+), and for 9.x the server is started with
// PGPASSFILE in its environment. Each primary_conninfo value is quoted with
// libpq's rules (single quotes, \' and \\), and the whole string then with
// the configuration file's rules ([pgconf.Quote]); SQL quoting is right for
// neither.
//
// # Running
//
// The servers get a minimal environment of their own, never the caller's:
// PATH, LD_LIBRARY_PATH, the locale (LANG, LANGUAGE, LC_*) and TZ as the
// caller has them, HOME of the OS user, and PGPASSFILE for 9.x; a variable
// whose value holds the password is dropped even from that. (A staging
// superuser can read the server's environment with COPY ... TO PROGRAM.)
//
// When this process is root, the server runs as the configured OS user
// (PostgreSQL refuses root): Setup gives it the data directory (mode 0700
// unless 0750 group access), the password file and the files it writes, and
// a missing socket directory.
//
// [Standby.Start] checks that the port is free, then starts the server with
// pg_ctl as that user; a failure returns a
// [StartError] with the reason (the first FATAL line that is not the
// walreceiver's, with its DETAIL) and the tail of the server log. A standby
// that runs but waits for WAL from a source that is down is started, not
// failed: WaitStreaming reports why it does not stream.
// [Standby.WaitStreaming] waits for pg_stat_wal_receiver to say "streaming"
// (9.6+), or for the "started streaming WAL" line of the latest server start
// and a live walreceiver process (9.4 and 9.5, whose warm standbys take no
// connections, or when the standby cannot be asked over its socket). It gives up
// at once on a walreceiver fault that cannot heal by itself (authentication
// refused, another system's WAL, WAL already removed on the source) and
// otherwise when its context ends, naming the last fault ([StreamError]).
// The log read is the pg_ctl log file and, with logging_collector on, the
// collector's current file. [Standby.Stop] shuts down fast, then
// immediately after StopTimeout. [Standby.Status] reports the postmaster
// and its walreceiver.
//
// # Noticing a silent source
//
// A network that drops packets without a reset is seen only through
// timeouts. Setup writes wal_receiver_timeout and
// wal_receiver_status_interval on the standby, and connect_timeout, TCP
// keepalives and (12+) tcp_user_timeout into primary_conninfo, so that the
// walreceiver gives up on a source it no longer hears within about 10 s
// ([Liveness], configurable). [Standby.Replay] reports what the standby
// received and applied, when it last heard from the source, whether replay
// is paused and whether a walreceiver streams: the facts that tell a stalled
// or dead stream from an idle one.
//
// Process checks read /proc: the running side is for Linux.
package replica
