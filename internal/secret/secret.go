// Package secret keeps passwords out of the text pgstage shows: errors, log
// lines and server log tails.
//
// Nothing in pgstage puts a password into such text on purpose (it goes into
// a 0600 passfile and nowhere else); Redact is the second line of defence for
// text that comes from elsewhere, such as a driver that echoes a connection
// string, or a server log that quotes one.
package secret

import (
	"strings"
)

// Mask replaces a password in redacted text.
const Mask = "********"

// forms returns the password as written in the places it can be quoted
// from: raw, with libpq conninfo escaping (\' and \\), with passfile
// escaping (\: and \\), with conf-file quoting (” and \\), and with
// both libpq and conf-file quoting, as primary_conninfo holds it.
func forms(password string) []string {
	libpq := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	conf := strings.NewReplacer(`\`, `\\`, `'`, `''`)
	fs := []string{
		password,
		libpq.Replace(password),
		strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(password),
		conf.Replace(password),
		conf.Replace(libpq.Replace(password)), // primary_conninfo in a conf file
	}
	// Longest first, so that an escaped form is masked whole rather than
	// around a raw form inside it.
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && len(fs[j]) > len(fs[j-1]); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	return fs
}

// Redact returns text with every occurrence of password, raw or in any of
// its escaped forms, replaced by Mask. Short passwords are masked too: a
// garbled message is better than a leaked password.
func Redact(text, password string) string {
	if password == "" {
		return text
	}
	for _, f := range forms(password) {
		text = strings.ReplaceAll(text, f, Mask)
	}
	return text
}

// Contains reports whether text holds password in any form Redact masks.
func Contains(text, password string) bool {
	if password == "" {
		return false
	}
	for _, f := range forms(password) {
		if strings.Contains(text, f) {
			return true
		}
	}
	return false
}

// Error wraps err so that its text has password redacted. errors.Is and
// errors.As still see err, so callers can match sentinels and types; only the
// text changes. It returns err itself when its text holds no password.
func Error(err error, password string) error {
	if err == nil || !Contains(err.Error(), password) {
		return err
	}
	return &redacted{msg: Redact(err.Error(), password), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
