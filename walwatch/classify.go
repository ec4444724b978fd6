package walwatch

import "bytes"

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
// contains Contains, if set) means Class, with Reason for faults. Since is
// the first major version with this wording, Until the first without it
// (0: still current), as a half-open range [Since, Until); 94 stands for 9.4.
type entry struct {
	Prefix   string
	Contains string
	Class    class
	Reason   Reason
	Since    int
	Until    int
}

// catalogue holds the English wording of every message walwatch acts on,
// PostgreSQL 9.4 to 18 (walreceiver.c, libpqwalreceiver.c, xlog.c,
// xlogrecovery.c, postmaster.c). More specific entries come first.
var catalogue = []entry{
	// Streaming.
	{Prefix: "started streaming WAL from primary at ", Class: clsStreaming, Since: 94},
	{Prefix: "restarted WAL streaming at ", Class: clsStreaming, Since: 94},
	{Prefix: "fetching timeline history file for timeline ", Class: clsTimelineSwitch, Since: 94},
	{Prefix: "new target timeline is ", Class: clsTimelineSwitch, Since: 94},
	{Prefix: "replication terminated by primary server", Class: clsTerminated, Since: 94},

	// Connection refused by the primary's authentication (the primary's
	// FATAL is relayed inside ours), before the generic connect failure.
	{Prefix: "could not connect to the primary server", Contains: "password authentication failed", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Contains: "pg_hba.conf", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Contains: "password is required", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Contains: "no password supplied", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Contains: "authentication failed", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Contains: "replication privilege", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Contains: "not permitted to log in", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Contains: "does not exist", Class: clsFault, Reason: ReasonAuthRefused, Since: 94},
	{Prefix: "could not connect to the primary server", Class: clsFault, Reason: ReasonPrimaryUnreachable, Since: 94, Until: 18},
	{Prefix: `streaming replication receiver "`, Contains: "password authentication failed", Class: clsFault, Reason: ReasonAuthRefused, Since: 18},
	{Prefix: `streaming replication receiver "`, Contains: "pg_hba.conf", Class: clsFault, Reason: ReasonAuthRefused, Since: 18},
	{Prefix: `streaming replication receiver "`, Contains: "password is required", Class: clsFault, Reason: ReasonAuthRefused, Since: 18},
	{Prefix: `streaming replication receiver "`, Contains: "authentication failed", Class: clsFault, Reason: ReasonAuthRefused, Since: 18},
	{Prefix: `streaming replication receiver "`, Contains: "replication privilege", Class: clsFault, Reason: ReasonAuthRefused, Since: 18},
	{Prefix: `streaming replication receiver "`, Contains: "could not connect to the primary server", Class: clsFault, Reason: ReasonPrimaryUnreachable, Since: 18},
	{Prefix: "could not receive database system identifier and timeline ID from the primary server", Class: clsFault, Reason: ReasonStreamLost, Since: 94},

	// Stream lost or refused.
	{Prefix: "could not receive data from WAL stream", Contains: "has already been removed", Class: clsFault, Reason: ReasonWALRemoved, Since: 94},
	{Prefix: "could not receive data from WAL stream", Class: clsFault, Reason: ReasonStreamLost, Since: 94},
	{Prefix: "could not send data to WAL stream", Class: clsFault, Reason: ReasonStreamLost, Since: 94},
	{Prefix: "could not send end-of-streaming message to primary", Class: clsFault, Reason: ReasonStreamLost, Since: 94},
	{Prefix: "error reading result of streaming command", Class: clsFault, Reason: ReasonStreamLost, Since: 94},
	{Prefix: "unexpected result after CommandComplete", Class: clsFault, Reason: ReasonStreamLost, Since: 94},
	{Prefix: "error while shutting down streaming COPY", Class: clsFault, Reason: ReasonStreamLost, Since: 94},
	{Prefix: "could not receive timeline history file from the primary server", Class: clsFault, Reason: ReasonStreamLost, Since: 94},
	{Prefix: "terminating walreceiver due to timeout", Class: clsFault, Reason: ReasonTimeout, Since: 94},
	{Prefix: "could not start WAL streaming", Contains: "has already been removed", Class: clsFault, Reason: ReasonWALRemoved, Since: 94},
	{Prefix: "could not start WAL streaming", Contains: "not in this server's history", Class: clsFault, Reason: ReasonTimelineDiverged, Since: 94},
	{Prefix: "could not start WAL streaming", Class: clsFault, Reason: ReasonStartFailed, Since: 94},
	{Prefix: "could not create replication slot", Class: clsFault, Reason: ReasonStartFailed, Since: 10},

	// Timelines and identity.
	{Prefix: "highest timeline ", Contains: "of the primary is behind recovery timeline", Class: clsFault, Reason: ReasonTimelineDiverged, Since: 94},
	{Prefix: "new timeline ", Contains: "forked off current database system timeline", Class: clsFault, Reason: ReasonTimelineDiverged, Since: 94},
	{Prefix: "requested timeline ", Contains: "is not a child of this server's history", Class: clsFault, Reason: ReasonTimelineDiverged, Since: 94},
	{Prefix: "primary server contains no more WAL on requested timeline", Class: clsFault, Reason: ReasonTimelineDiverged, Since: 94},
	{Prefix: "database system identifier differs between the primary and standby", Class: clsFault, Reason: ReasonWrongPrimary, Since: 94},

	// The walreceiver process itself.
	{Prefix: "terminating walreceiver process due to administrator command", Class: clsReceiverStopped, Since: 94},
	{Prefix: "WAL receiver process (PID ", Contains: "terminated by", Class: clsFault, Reason: ReasonReceiverCrashed, Since: 94},
	{Prefix: "WAL receiver process (PID ", Contains: "exited with exit code", Class: clsNoise, Since: 94},
	{Prefix: "walreceiver process (PID ", Contains: "terminated by", Class: clsFault, Reason: ReasonReceiverCrashed, Since: 17},
	{Prefix: "cannot continue WAL streaming, recovery has already ended", Class: clsNoise, Since: 94},

	// Staging server lifecycle.
	{Prefix: "received smart shutdown request", Class: clsShutdownRequested, Since: 94},
	{Prefix: "received fast shutdown request", Class: clsShutdownRequested, Since: 94},
	{Prefix: "received immediate shutdown request", Class: clsShutdownRequested, Since: 94},
	{Prefix: "database system is shut down", Class: clsShutdown, Since: 94},
	{Prefix: "database system is ready to accept read only connections", Class: clsReadyReadOnly, Since: 94, Until: 14},
	{Prefix: "database system is ready to accept read-only connections", Class: clsReadyReadOnly, Since: 14},
	{Prefix: "database system is ready to accept connections", Class: clsReadyReadWrite, Since: 94},
	{Prefix: "entering standby mode", Class: clsStarting, Since: 94},
	{Prefix: "database system was shut down in recovery at", Class: clsStarting, Since: 94},
	{Prefix: "database system was interrupted", Class: clsStarting, Since: 94},
	{Prefix: "starting PostgreSQL ", Class: clsStarting, Since: 10},
	{Prefix: "terminating any other active server processes", Class: clsCrashed, Since: 94},
	{Prefix: "received promote request", Class: clsPromoted, Since: 94},
	{Prefix: "promote trigger file found", Class: clsPromoted, Since: 94, Until: 16},
	{Prefix: "trigger file found", Class: clsPromoted, Since: 94, Until: 10},
	{Prefix: "archive recovery complete", Class: clsPromoted, Since: 94},

	// Noise at the end of available WAL, and other known non-events.
	{Prefix: "invalid record length at ", Class: clsNoise, Since: 94},
	{Prefix: "record with incorrect prev-link ", Class: clsNoise, Since: 94},
	{Prefix: "invalid magic number ", Class: clsNoise, Since: 94},
	{Prefix: "invalid resource manager ID ", Class: clsNoise, Since: 94},
	{Prefix: "record with invalid length at ", Class: clsNoise, Since: 94},
	{Prefix: "unexpected pageaddr ", Class: clsNoise, Since: 94},
	{Prefix: "contrecord is requested by ", Class: clsNoise, Since: 94},
	{Prefix: "missing contrecord at ", Class: clsNoise, Since: 15},
	{Prefix: "waiting for WAL to become available at ", Class: clsNoise, Since: 15},
}

// byFirst indexes the catalogue by the first byte of the prefix, so that
// the common case (a record that means nothing) costs one table look-up
// and a few short comparisons.
var byFirst [256][]int

func init() {
	for i, e := range catalogue {
		b := e.Prefix[0]
		byFirst[b] = append(byFirst[b], i)
	}
}

// classify finds what a record means, by its English message, else (14+,
// csvlog/jsonlog, %e with %b) by SQLSTATE and backend type.
func classify(r *rawRecord) (class, Reason) {
	if r.relayed || len(r.message) == 0 {
		return clsNone, ReasonNone
	}
	if len(r.btype) > 0 && bytes.Equal(r.btype, []byte("client backend")) {
		// A client's error message may quote anything.
		return clsNone, ReasonNone
	}
	m := r.message
	for _, i := range byFirst[m[0]] {
		e := &catalogue[i]
		if len(m) < len(e.Prefix) || string(m[:len(e.Prefix)]) != e.Prefix {
			continue
		}
		if e.Contains != "" && !bytes.Contains(m, []byte(e.Contains)) {
			continue
		}
		return e.Class, e.Reason
	}
	return classifyByCode(r)
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
