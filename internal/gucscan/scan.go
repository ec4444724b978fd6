package gucscan

// The scanner follows the token classes of PostgreSQL's guc-file.l. Flex
// picks the longest match and, among equally long ones, the rule listed
// first, so every class is measured and the winner chosen the same way.

// Kind is a token class of guc-file.l.
type Kind int

// Token classes.
const (
	End         Kind = iota // end of line or end of file
	ID                      // a name: letters, digits, underscores
	QualifiedID             // name.name (custom settings)
	String                  // a quoted string, quotes included
	Unquoted                // an unquoted string (paths, -, :, /)
	Integer                 // digits or 0x hex digits, with unit letters
	Real                    // a number with a point or exponent
	Equals                  // =
	Error                   // anything else: a syntax error
)

func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLetterOrDigit(c byte) bool { return isLetter(c) || isDigit(c) }

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isUnitLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// Token is one lexeme of a line: s[Start:End].
type Token struct {
	Kind       Kind
	Start, End int
}

// Scan returns the token at or after position i of s, a line without its
// newline. White space and comments are skipped; the end of s (or a
// comment reaching it) is End.
func Scan(s []byte, i int) Token {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
		i++
	}
	if i >= len(s) || s[i] == '#' {
		return Token{Kind: End, Start: i, End: i}
	}
	best, kind := 0, Error
	try := func(n int, k Kind) {
		if n > best {
			best, kind = n, k
		}
	}
	// Only the classes that can start with s[i] are measured, in rule order.
	switch c := s[i]; {
	case isLetter(c):
		try(matchID(s, i), ID)
		try(matchQualifiedID(s, i), QualifiedID)
		try(matchUnquoted(s, i), Unquoted)
	case c == '\'':
		try(matchString(s, i), String)
	case isDigit(c) || c == '+' || c == '-' || c == '.':
		try(matchInteger(s, i), Integer)
		try(matchReal(s, i), Real)
	case c == '=':
		try(1, Equals)
	}
	if best == 0 {
		best = 1 // flex's "." rule: one byte, GUC_ERROR
	}
	return Token{Kind: kind, Start: i, End: i + best}
}

func matchID(s []byte, i int) int {
	if i >= len(s) || !isLetter(s[i]) {
		return 0
	}
	j := i + 1
	for j < len(s) && isLetterOrDigit(s[j]) {
		j++
	}
	return j - i
}

func matchQualifiedID(s []byte, i int) int {
	a := matchID(s, i)
	if a == 0 || i+a >= len(s) || s[i+a] != '.' {
		return 0
	}
	b := matchID(s, i+a+1)
	if b == 0 {
		return 0
	}
	return a + 1 + b
}

func matchUnquoted(s []byte, i int) int {
	if i >= len(s) || !isLetter(s[i]) {
		return 0
	}
	j := i + 1
	for j < len(s) {
		c := s[j]
		if isLetterOrDigit(c) || c == '-' || c == '.' || c == '_' || c == ':' || c == '/' {
			j++
			continue
		}
		break
	}
	return j - i
}

// matchString measures \'([^'\\\n]|\\.|\'\')*\' : the longest match, so a
// doubled quote continues the string when a closing quote follows later.
func matchString(s []byte, i int) int {
	if i >= len(s) || s[i] != '\'' {
		return 0
	}
	longest := 0
	j := i + 1
	for j < len(s) {
		switch c := s[j]; {
		case c == '\\':
			if j+1 >= len(s) || s[j+1] == '\n' {
				return longest
			}
			j += 2
		case c == '\'':
			longest = j + 1 - i
			if j+1 < len(s) && s[j+1] == '\'' {
				j += 2
				continue
			}
			return longest
		case c == '\n':
			return longest
		default:
			j++
		}
	}
	return longest
}

func matchSign(s []byte, i int) int {
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		return 1
	}
	return 0
}

// matchInteger measures {SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*.
func matchInteger(s []byte, i int) int {
	j := i + matchSign(s, i)
	best := 0
	units := func(k int) int {
		for k < len(s) && isUnitLetter(s[k]) {
			k++
		}
		return k
	}
	if k := j; k < len(s) && isDigit(s[k]) {
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		best = units(k) - i
	}
	if j+2 < len(s) && s[j] == '0' && s[j+1] == 'x' && isHexDigit(s[j+2]) {
		k := j + 2
		for k < len(s) && isHexDigit(s[k]) {
			k++
		}
		if n := units(k) - i; n > best {
			best = n
		}
	}
	return best
}

// matchReal measures {SIGN}?{DIGIT}*"."{DIGIT}*([Ee]{SIGN}?{DIGIT}+)?.
func matchReal(s []byte, i int) int {
	j := i + matchSign(s, i)
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j >= len(s) || s[j] != '.' {
		return 0
	}
	j++
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		k += matchSign(s, k)
		if k < len(s) && isDigit(s[k]) {
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			j = k
		}
	}
	return j - i
}

// Unquote strips the quotes of a String token and resolves doubled quotes
// and the backslash escapes as GUC_scanstr does. The server keeps a C
// string, so an octal escape giving byte 0 ends the value there.
func Unquote(tok []byte) string {
	in := tok[1 : len(tok)-1]
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\\' && i+1 < len(in):
			i++
			switch e := in[i]; e {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case '0', '1', '2', '3', '4', '5', '6', '7':
				v, k := 0, 0
				for k < 3 && i+k < len(in) && in[i+k] >= '0' && in[i+k] <= '7' {
					v = v<<3 + int(in[i+k]-'0')
					k++
				}
				i += k - 1
				c = byte(v)
			default:
				c = e
			}
		case c == '\'' && i+1 < len(in) && in[i+1] == '\'':
			i++
		}
		if c == 0 {
			break
		}
		out = append(out, c)
	}
	return string(out)
}
