// Package pgconf reads and edits PostgreSQL configuration files
// (postgresql.conf and the files it includes, postgresql.auto.conf)
// without disturbing a byte the edit does not need to change.
//
// # Grammar
//
// [Parse] reads a file with the grammar of the server's own scanner,
// guc-file.l: "name = value", "name value" or "name=value"; names are
// case-insensitive and may hold one dot (pg_stat_statements.max); values
// are quoted strings (doubled quotes and backslash escapes), numbers with units
// (128MB, 5min), identifiers or unquoted strings; # starts a comment outside
// quotes. Tokens are matched as flex matches them, longest first, so
// values that look reasonable but the server rejects (1e5, a.b.c) are
// syntax errors here too, reported as the server reports them, with file,
// line and the token near the error ([SyntaxError]). [File.Bytes] gives
// back exactly the bytes parsed, whatever they were.
//
// # The effective view
//
// [Load] reads a data directory or a configuration file as the server
// does: include, include_if_exists and include_dir (its .conf files in
// name order) are followed from the including file's directory, nested at
// most 10 deep (which is how include cycles end), and postgresql.auto.conf
// is read last. [Config.Get] answers which value is in effect and from
// which file and line; [Config.Entries] gives the rows the pg_file_settings
// view would show. Where the server's behaviour changed between versions
// (how an included file's path is written out changed in 15), the data
// directory's PG_VERSION decides; without one the current rules apply.
//
// # Edits
//
// [Config.Set] edits the line in effect in place (keeping its spacing and
// trailing comment), wherever it is, so that the edit takes effect; or,
// with [RefuseOverridden], reports a setting that lives outside the main
// file. A name set nowhere replaces its commented template line
// ("#port = 5432") in the main file, else goes into a marked block at the
// end of it. [Config.Comment] comments out every line setting a name in
// every file read, marking each line with [CommentMark] so that
// [Config.Uncomment] restores it exactly. Values are quoted with [Quote]
// when they need it. Every edit reports whether it changed anything, and
// [Config.Save] writes the changed files atomically, keeping their mode and
// owner.
//
// # Confinement
//
// Files are read wherever the server would read them, but a configuration
// that came from elsewhere (a restored backup) can name files outside the
// directory being prepared: an include with an absolute path, a
// postgresql.conf that is a symbolic link. Setting [Config.Root] confines
// [Config.Save]: a changed file whose resolved directory lies outside Root,
// or that is itself a symbolic link, is refused with an [OutsideRootError]
// ([ErrOutsideRoot]) and nothing is written; [Config.Writable] answers the
// same question beforehand, so a caller can put its override in a file it
// may write (postgresql.auto.conf, read last). The zero Root writes where
// the files are, following symbolic links.
//
// # Checking against the server binaries
//
// A [Checker] asks the postgres binary of the version that will read the
// files: [Checker.Parameters] lists what it knows (postgres
// --describe-config), and [Checker.Check] or [Config.Check] has it read the
// settings (postgres -C on a scratch configuration), so unknown names, bad
// enum values, numbers out of range and wrong units are reported in the
// server's own words, with the allowed values, all at once
// ([InvalidSettingError]), before any server starts. postgres refuses to
// run as root except for --describe-config: a caller running as root sets
// [Checker.Credential] to an unprivileged user.
//
// # Fidelity
//
// The package is tested against the servers of every major version from
// 10 to 18: for a corpus of tricky files, [Config.Entries] must equal the
// server's pg_file_settings row for row (name, setting, file, line, applied,
// error), and after edits postgres -C must show the values [Config.Get]
// reports. Two things only a running server knows are out of reach:
// whether a value passes its parameter's checks (use a [Checker]) and
// whether a postmaster parameter differs from the running value.
//
// A Config is not safe for concurrent use; separate Configs are
// independent.
package pgconf
