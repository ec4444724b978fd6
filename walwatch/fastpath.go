package walwatch

import "bytes"

// The fast path lets a replay of a large stderr log skip, at the cost of a
// few comparisons, the lines that cannot matter: every catalogue message
// starts right after "SEVERITY:  ", so a line whose text after the first
// ":  " does not begin with a catalogue head is skipped unless a record
// that matters is open (its continuation lines still attach to it).
//
// It applies only when the first ":  " of a line is the severity's: a
// prefix without free-text fields (%a %u %d %h %r %i %b %Q %L), since those
// may hold ":  ". With %b the slow path also keeps the SQLSTATE fallback
// for translated messages.

// headTable is an open-addressing set of the first 8 bytes of every
// catalogue prefix that is not noise, and of 18's receiver prefix.
var headTable [512]uint64

func init() {
	prefixes := [][]byte{receiver18} // 18's connect failures, see connectFailure18
	for _, e := range catalogue {
		if e.Class != clsNoise {
			prefixes = append(prefixes, []byte(e.Prefix))
		}
	}
	for _, p := range prefixes {
		h := headOf(p).word
		for i := headSlot(h); ; i = (i + 1) % len(headTable) {
			if headTable[i] == h {
				break
			}
			if headTable[i] == 0 {
				headTable[i] = h
				break
			}
		}
	}
}

func headSlot(w uint64) int { return int((w * 0x9E3779B97F4A7C15) >> 55) }

// mayMatter reports whether msg could start a catalogue message.
func mayMatter(msg []byte) bool {
	if len(msg) < 8 {
		return false
	}
	w := headOf(msg).word
	for i := headSlot(w); ; i = (i + 1) % len(headTable) {
		switch headTable[i] {
		case w:
			return true
		case 0:
			return false
		}
	}
}

// lineMayMatter looks at the text after the first ":  " of a line.
func lineMayMatter(l []byte) bool {
	for from := 0; ; {
		i := bytes.IndexByte(l[from:], ':')
		if i < 0 {
			return false
		}
		i += from
		if i+2 < len(l) && l[i+1] == ' ' && l[i+2] == ' ' {
			return mayMatter(l[i+3:])
		}
		from = i + 1
	}
}

// fastPrefix reports whether p allows the fast path.
func fastPrefix(p *prefix) bool {
	for _, t := range p.toks {
		switch t.esc {
		case 'a', 'u', 'd', 'h', 'r', 'i', 'b', 'Q', 'L':
			return false
		}
		if t.esc == 0 && !t.q && bytes.Contains([]byte(t.lit), []byte(":  ")) {
			return false
		}
	}
	return true
}
