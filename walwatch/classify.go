package walwatch

import (
	"bytes"
	"encoding/binary"
)

// class is what a record means to the state machine.
type class uint8

const (
	clsNone              class = iota // not in the catalogue
	clsNoise                          // known and deliberately ignored
	clsStreaming                      // walreceiver streams
	clsTimelineSwitch                 // a stream end that a timeline switch explains
	clsTerminated                     // primary ended the stream (fault unless a timeline switch follows)
	clsFault                          // replication stopped, with a reason
	clsReceiverStopped                // walreceiver terminated by a signal (ambiguous)
	clsShutdownRequested              // staging server asked to stop
	clsShutdown                       // staging server stopped
	clsStarting                       // staging server starting / entering recovery
	clsReadyReadOnly                  // hot standby accepts connections
	clsReadyReadWrite                 // server accepts read-write connections: not a standby
	clsCrashed                        // a staging server process crashed
	clsPromoted                       // recovery ended by promotion
)

// entry is one catalogue line: a message that starts with Prefix (and
// contains Contains, if set) means Class, with Reason for faults.
//
// Entries carry no version range: the wordings of different versions do not
// overlap, so every entry applies to every version, and a log that spans a
// major upgrade, or a watcher that has not yet seen "starting PostgreSQL",
// is classified the same way.
type entry struct {
	Prefix   string
	Contains string
	Class    class
	Reason   Reason
}

// catalogue holds the English wording of every message walwatch acts on,
// PostgreSQL 9.4 to 18 (walreceiver.c, libpqwalreceiver.c, xlog.c,
// xlogrecovery.c, postmaster.c). More specific entries come first.
var catalogue = []entry{
	// Streaming.
	{Prefix: "started streaming WAL from primary at ", Class: clsStreaming},
	{Prefix: "restarted WAL streaming at ", Class: clsStreaming},
	{Prefix: "fetching timeline history file for timeline ", Class: clsTimelineSwitch},
	{Prefix: "new target timeline is ", Class: clsTimelineSwitch},
	{Prefix: "replication terminated by primary server", Class: clsTerminated},

	// Connection refused by the primary's authentication (the primary's
	// FATAL is relayed inside ours), before the generic connect failure.
	// 18 words these `streaming replication receiver "NAME" could not
	// connect ...`: classify reduces that form to this one.
	{Prefix: "could not connect to the primary server", Contains: "password authentication failed", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Contains: "pg_hba.conf", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Contains: "password is required", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Contains: "no password supplied", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Contains: "authentication failed", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Contains: "replication privilege", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Contains: "not permitted to log in", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Contains: "does not exist", Class: clsFault, Reason: ReasonAuthRefused},
	{Prefix: "could not connect to the primary server", Class: clsFault, Reason: ReasonPrimaryUnreachable},
	{Prefix: "could not receive database system identifier and timeline ID from the primary server", Class: clsFault, Reason: ReasonStreamLost},

	// Stream lost or refused.
	{Prefix: "could not receive data from WAL stream", Contains: "has already been removed", Class: clsFault, Reason: ReasonWALRemoved},
	{Prefix: "could not receive data from WAL stream", Class: clsFault, Reason: ReasonStreamLost},
	{Prefix: "could not send data to WAL stream", Class: clsFault, Reason: ReasonStreamLost},
	{Prefix: "could not send end-of-streaming message to primary", Class: clsFault, Reason: ReasonStreamLost},
	{Prefix: "error reading result of streaming command", Class: clsFault, Reason: ReasonStreamLost},
	{Prefix: "unexpected result after CommandComplete", Class: clsFault, Reason: ReasonStreamLost},
	{Prefix: "error while shutting down streaming COPY", Class: clsFault, Reason: ReasonStreamLost},
	{Prefix: "could not receive timeline history file from the primary server", Class: clsFault, Reason: ReasonStreamLost},
	{Prefix: "terminating walreceiver due to timeout", Class: clsFault, Reason: ReasonTimeout},
	{Prefix: "could not start WAL streaming", Contains: "has already been removed", Class: clsFault, Reason: ReasonWALRemoved},
	{Prefix: "could not start WAL streaming", Contains: "not in this server's history", Class: clsFault, Reason: ReasonTimelineDiverged},
	{Prefix: "could not start WAL streaming", Class: clsFault, Reason: ReasonStartFailed},
	{Prefix: "could not create replication slot", Class: clsFault, Reason: ReasonStartFailed},

	// Timelines and identity.
	{Prefix: "highest timeline ", Contains: "of the primary is behind recovery timeline", Class: clsFault, Reason: ReasonTimelineDiverged},
	{Prefix: "new timeline ", Contains: "forked off current database system timeline", Class: clsFault, Reason: ReasonTimelineDiverged},
	{Prefix: "requested timeline ", Contains: "is not a child of this server's history", Class: clsFault, Reason: ReasonTimelineDiverged},
	{Prefix: "primary server contains no more WAL on requested timeline", Class: clsFault, Reason: ReasonTimelineDiverged},
	{Prefix: "database system identifier differs between the primary and standby", Class: clsFault, Reason: ReasonWrongPrimary},

	// The walreceiver process itself.
	{Prefix: "terminating walreceiver process due to administrator command", Class: clsReceiverStopped},
	{Prefix: "WAL receiver process (PID ", Contains: "terminated by", Class: clsFault, Reason: ReasonReceiverCrashed},
	{Prefix: "WAL receiver process (PID ", Contains: "exited with exit code", Class: clsNoise},
	{Prefix: "walreceiver process (PID ", Contains: "terminated by", Class: clsFault, Reason: ReasonReceiverCrashed},
	{Prefix: "cannot continue WAL streaming, recovery has already ended", Class: clsNoise},

	// Staging server lifecycle.
	{Prefix: "received smart shutdown request", Class: clsShutdownRequested},
	{Prefix: "received fast shutdown request", Class: clsShutdownRequested},
	{Prefix: "received immediate shutdown request", Class: clsShutdownRequested},
	{Prefix: "database system is shut down", Class: clsShutdown},
	{Prefix: "database system is ready to accept read only connections", Class: clsReadyReadOnly}, // to 13
	{Prefix: "database system is ready to accept read-only connections", Class: clsReadyReadOnly}, // 14+
	{Prefix: "database system is ready to accept connections", Class: clsReadyReadWrite},
	{Prefix: "entering standby mode", Class: clsStarting},
	{Prefix: "database system was shut down in recovery at", Class: clsStarting},
	{Prefix: "database system was interrupted", Class: clsStarting},
	{Prefix: "starting PostgreSQL ", Class: clsStarting},
	{Prefix: "terminating any other active server processes", Class: clsCrashed},
	{Prefix: "received promote request", Class: clsPromoted},
	{Prefix: "promote trigger file found", Class: clsPromoted}, // 12-15
	{Prefix: "trigger file found", Class: clsPromoted},         // 10-11
	{Prefix: "archive recovery complete", Class: clsPromoted},

	// Noise at the end of available WAL, and other known non-events.
	{Prefix: "invalid record length at ", Class: clsNoise},
	{Prefix: "record with incorrect prev-link ", Class: clsNoise},
	{Prefix: "invalid magic number ", Class: clsNoise},
	{Prefix: "invalid resource manager ID ", Class: clsNoise},
	{Prefix: "record with invalid length at ", Class: clsNoise},
	{Prefix: "unexpected pageaddr ", Class: clsNoise},
	{Prefix: "contrecord is requested by ", Class: clsNoise},
	{Prefix: "missing contrecord at ", Class: clsNoise},
	{Prefix: "waiting for WAL to become available at ", Class: clsNoise},
}

// byFirst indexes the catalogue by the first byte of the prefix, and heads
// holds each prefix's first 8 bytes as a word, so that the common case (a
// record that means nothing) costs a table look-up and a few word compares.
var (
	byFirst [256][]int
	heads   []head
)

type head struct{ word, mask uint64 }

func headOf(b []byte) head {
	if len(b) >= 8 {
		return head{word: binary.LittleEndian.Uint64(b), mask: ^uint64(0)}
	}
	var h head
	for i := 0; i < 8 && i < len(b); i++ {
		h.word |= uint64(b[i]) << (8 * i)
		h.mask |= 0xff << (8 * i)
	}
	return h
}

func init() {
	for i, e := range catalogue {
		b := e.Prefix[0]
		byFirst[b] = append(byFirst[b], i)
		heads = append(heads, headOf([]byte(e.Prefix)))
	}
}

var clientBackend = []byte("client backend")

// classify finds what a record means, by its English message, else (14+,
// csvlog/jsonlog, %e with %b) by SQLSTATE and backend type.
func classify(r *rawRecord) (class, Reason) {
	if r.relayed || len(r.message) == 0 {
		return clsNone, ReasonNone
	}
	if len(r.btype) > 0 && bytes.Equal(r.btype, clientBackend) {
		// A client's error message may quote anything.
		return clsNone, ReasonNone
	}
	m := connectFailure18(r.message)
	w := headOf(m).word
	for _, i := range byFirst[m[0]] {
		e := &catalogue[i]
		if w&heads[i].mask != heads[i].word || len(m) < len(e.Prefix) || string(m[:len(e.Prefix)]) != e.Prefix {
			continue
		}
		if e.Contains != "" && !bytes.Contains(m, []byte(e.Contains)) {
			continue
		}
		return e.Class, e.Reason
	}
	return classifyByCode(r)
}

var (
	receiver18 = []byte(`streaming replication receiver "`)
	connect18  = []byte(`" could not connect to the primary server`)
)

// connectFailure18 returns the message from "could not connect to the
// primary server" on when it is 18's `streaming replication receiver "NAME"
// could not connect to the primary server: ...`, so that the catalogue's
// entries for that wording (auth refused, unreachable) apply to 18 too.
func connectFailure18(m []byte) []byte {
	if !bytes.HasPrefix(m, receiver18) {
		return m
	}
	if i := bytes.Index(m[len(receiver18):], connect18); i >= 0 {
		return m[len(receiver18)+i+2:]
	}
	return m
}

// classifyByCode classifies walreceiver errors whose message is not in the
// catalogue (a translated lc_messages) by SQLSTATE. Before 14 walreceiver
// errors carried XX000 and no backend type exists before 13, so this works
// from 14 with csvlog, jsonlog or a prefix with %e and %b.
func classifyByCode(r *rawRecord) (class, Reason) {
	if !bytes.Equal(r.btype, []byte("walreceiver")) || len(r.sqlstate) != 5 {
		return clsNone, ReasonNone
	}
	switch s := string(r.sqlstate); {
	case s == "57P01":
		return clsReceiverStopped, ReasonNone
	case s == "08006", s == "08001", s == "08004", s == "08000", s == "08003":
		return clsFault, ReasonUnknown
	case s == "28P01", s == "28000":
		return clsFault, ReasonAuthRefused
	case s == "55000":
		return clsFault, ReasonUnknown
	}
	return clsNone, ReasonNone
}
