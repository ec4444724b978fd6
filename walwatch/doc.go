// Package walwatch watches a PostgreSQL standby's logs and reports, within
// a fraction of a second, when streaming replication stops, why, and when it
// resumes.
//
// The original product read the staging server's log once a minute; walwatch
// follows the log directory with fsnotify (plus a periodic poll as a safety
// net, or alone for network file systems), reads whole records in every log
// format, classifies them with one catalogue of PostgreSQL 9.4-18 messages
// and turns them into events through a small state machine.
//
// # Use
//
//	w, err := walwatch.New(walwatch.Config{LogDir: "/staging/data/log"})
//	if err != nil { ... }
//	defer w.Close()
//	for ev := range w.Events() {
//		if ev.Kind == walwatch.KindFault {
//			log.Printf("replication stopped: %s (%s)", ev.Reason, ev.Message)
//		}
//	}
//
// [New] starts a goroutine and returns at once. [Watcher.Events] and
// [Watcher.Errors] deliver events and non-fatal errors; [Watcher.Close]
// stops the goroutine, closes both channels and may be called more than
// once. [Watcher.State] answers the current [State] at any moment and
// [Watcher.Position] where to resume.
//
// # Start modes
//
// [StartLive] (the default) follows from the end of the logs, after reading
// back the current file silently to learn the present state (and up to three
// files before it if the current one tells nothing, as after a rotation): if
// replication was already down when the watcher started, the first event is
// that Fault (with the log time and line of the record that began the
// outage); if it was streaming, the first event is Streaming. [StartReplay]
// reads every file from its start and closes Events after the last record.
// [StartResume] continues from a saved [Position]: a file identity (device
// and inode) and an offset just after a complete record, with the state
// there. Every Event carries the Position after its record, so an embedding
// process that saves the Position of the last event it handled neither
// misses nor repeats events when it restarts. A fingerprint of the file's
// first bytes guards against an inode number reused by a new file.
//
// # Following files
//
// The watcher follows the directory, not a file: rotation to a new name,
// truncation (log_truncate_on_rotation, copytruncate), deletion and
// re-creation, and a name that now belongs to another file (told apart by
// device and inode) are all handled. Files are read oldest first (by
// modification time), so an old file is read to its end before the next.
// A partial last line is held until its newline arrives. Lines longer than
// [MaxLine] (1 MiB) are cut and end with [CutMarker]. An fsnotify queue
// overflow causes a full rescan, as does every poll ([Config.PollInterval],
// default one minute; [Config.PollOnly] disables fsnotify for NFS).
//
// The log read is the one the server writes, whatever an outside tool does
// to names. PostgreSQL never reopens its stderr (pg_ctl -l): after mv
// rotation (logrotate without copytruncate) the server writes the moved
// file, so a file that no matching name leads to any more (moved away,
// even out of the directory, or deleted) is followed through the watcher's
// descriptor until another file grows after it, which is what a real
// rotation (the logging collector's next file, a restarted server) looks
// like. Outside the directory only the poll sees it grow. A new file whose
// first bytes are those of a followed file is a copy (copytruncate's first
// step): it is not read as new; when the original is then truncated, what
// the original got after the watcher last read it is read from the copy,
// before the original's new records, so that no event is lost, repeated or
// reordered, with fsnotify or polling.
//
// # Bounded logs
//
// PostgreSQL never deletes its logs. A staging server that runs for a year
// logs through the logging collector rotating by size (log_rotation_size,
// log_rotation_age = 0, a log_filename such as 'staging-%Y%m%d-%H%M%S.log'
// matched by [Config.Pattern]); the watcher follows each new file from its
// start and reads an old one to its end first. [Prune] removes the oldest
// files beyond a number kept, never one the watcher may not have read (the
// file of a [Position] and those after it): call it now and then with the
// Position of the last event handled.
//
// # Records
//
// A [Record] is a whole log record. In stderr logs a line that starts with
// log_line_prefix (compiled from [Config.Prefix], read from the data
// directory's configuration, or inferred from the lines) begins a record; tab-led
// continuation lines, DETAIL and HINT lines of the same process and lines
// without a prefix or severity belong to it; unprefixed text with a
// severity (a WARNING relayed from the primary by libpq) is a relayed
// record of its own and never classified. csvlog rows are framed by quote
// parity and parsed with encoding/csv (23, 24 or 26 columns); jsonlog
// objects are read by key. [NewReader] exposes the readers for one file.
//
// Any log_line_prefix the server accepts is read: every escape, padding
// (%-10u, %10p), literal text, no space before the severity; the empty
// prefix (9.x's default) is said with [Config.PrefixEmpty]. Not given, the
// prefix is inferred from the structure of the lines (the text before each
// severity, aligned across lines), not from a list of known prefixes.
//
// # Never silently blind
//
// The format is told by what the files hold (and current_logfiles), not
// by names and times alone. A file read from its start in which no record
// parses with the format and prefix in use (in its first 64 KiB or 16
// lines) is reported on Errors as [ErrUnreadable], naming the file and
// what to set: a watcher never reads a log it cannot understand as zero
// events.
//
// # Classification
//
// One catalogue of the English messages of every version (their wordings do
// not overlap, so all apply whatever the server's version; 18's
// `streaming replication receiver "NAME" could not connect ...` is read as
// the older "could not connect ...") maps records to streaming, faults with
// a [Reason], and staging lifecycle
// (shutdown requested, shut down, ready, crashed, promoted). The end-of-WAL
// noise of the WAL reader ("invalid record length at ...") is ignored.
// Where the record carries a SQLSTATE and a backend type (csvlog and jsonlog
// from 14, or a log_line_prefix with %e and %b) a walreceiver error that is
// not in the catalogue (a translated lc_messages) is still a fault, with
// [ReasonUnknown] (or [ReasonAuthRefused] for class 28). Everything else,
// including the "started streaming" that ends an outage with Recovered,
// needs the server's lc_messages in English (C or en_*): set it on the
// staging server (it does not affect clients' own lc_messages).
//
// # Events and state
//
// The state machine raises one [KindFault] per outage, however many retry
// lines follow, and [KindRecovered] when streaming resumes. If an open
// outage turns out to need a resync ([Reason.NeedsResync]: WAL removed on
// the primary, timeline divergence, another database system) a second Fault
// with that reason follows. After "WAL segment has already been
// removed" a restart of streaming that fails again is not a recovery; the
// state keeps [State.NeedsResync]. "replication terminated by primary
// server" is a fault only if no timeline switch follows within
// [Config.TimelineSwitchWait] (or if a fault record comes first). A shutdown
// of the staging server itself gives [KindShutdownRequested] and
// [KindShutdown], never a Fault; a walreceiver killed by the shutdown is
// expected. [Config.Grace] suppresses outages shorter than it.
//
// With [Config.ConnString] each Fault, Recovered and Streaming event is
// confirmed with pg_stat_wal_receiver (its status lands in
// [Event.Receiver]) and, when the logs tell nothing at start, the initial
// state is read from the server. The logs stay the trigger.
//
// # Cost
//
// Idle, the watcher wakes only for fsnotify events and the poll. In stderr
// logs whose prefix has no free-text field, a line that cannot start a
// catalogue message is skipped after a few comparisons, so a large log
// replays at about the speed of grep. Memory stays flat whatever the log
// size: a 256 KiB read buffer and the longest line (at most [MaxLine]).
//
// # Tests
//
// Besides table and fuzz tests, the package is tested against real standbys
// of PostgreSQL 10 to 18 (internal/pgtest) under real outages, in the three
// log formats at once; their logs are kept in testdata/<major>/ and replayed
// without PostgreSQL (go test -run TestLiveStandby -update recaptures them).
package walwatch
