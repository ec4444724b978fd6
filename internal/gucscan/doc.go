// Package gucscan is the grammar of postgresql.conf as the server's
// guc-file.l reads it: the token classes ([Scan]), the per-line rule
// "name [=] value" ([ParseLine]) and the unquoting of strings ([Unquote]).
//
// It is the one place pgstage knows this grammar: pgconf (which edits
// configuration files losslessly) and walwatch (which reads a few logging
// settings) both use it, so that walwatch needs no pgconf and neither
// reads a value differently from the server.
package gucscan
