package replica

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Password is the replication role's password. It never shows itself:
// fmt (every verb, %+v and %#v of a struct holding it included), slog and
// encoding/json all print [redacted] instead, so a Source or Config can be
// logged or dumped as it is. Reveal returns the password itself, for the
// one place that needs it: the password file.
//
// An empty Password prints as empty, so that "no password" stays visible.
type Password string

// Redacted is what a non-empty Password prints as.
const Redacted = "[redacted]"

// Reveal returns the password itself.
func (p Password) Reveal() string { return string(p) }

// String returns Redacted, or "" for an empty password.
func (p Password) String() string {
	if p == "" {
		return ""
	}
	return Redacted
}

// Format prints String for every verb: %x or %d of the raw string would
// otherwise give the password away too.
func (p Password) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q', verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, strconv.Quote(p.String()))
	default:
		fmt.Fprint(f, p.String())
	}
}

// GoString is what %#v shows.
func (p Password) GoString() string { return strconv.Quote(p.String()) }

// LogValue makes slog show String.
func (p Password) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalText gives String, for encoders that use text (and slog's text
// handler inside structs).
func (p Password) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// MarshalJSON gives String as a JSON string. A Password read back from such
// JSON is the word Redacted, not the password: JSON is for showing a
// configuration, not for storing the secret.
func (p Password) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(p.String())), nil }
