package walwatch

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher follows a staging server's log directory and reports replication
// faults. Create it with New; read Events and Errors until they close; call
// Close when done.
type Watcher struct {
	cfg    Config
	dir    string
	format Format
	prefix *prefix
	log    *slog.Logger

	events chan Event
	errors chan error
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu    sync.Mutex // guards state and pos for State and Position
	state State
	pos   Position

	// Owned by the run goroutine.
	fsw    *fsnotify.Watcher
	files  map[fileID]*tracked
	byPath map[string]fileID
	m      *machine
	buf    []byte
	silent bool // reading back: learn the state, emit nothing
	// sniffPending: log_line_prefix was neither given nor found in a file.
	sniffPending bool
	out          []Event
	last         lastRecord
}

// New checks the configuration, decides the format and prefix, starts
// watching and returns at once; events arrive on Events.
func New(cfg Config) (*Watcher, error) {
	cfg.defaults()
	w := &Watcher{cfg: cfg, log: cfg.Logger, format: cfg.Format,
		files: map[fileID]*tracked{}, byPath: map[string]fileID{}, buf: make([]byte, 256<<10)}
	var settings map[string]string
	if cfg.DataDir != "" {
		settings = serverSettings(cfg.DataDir)
	}
	w.dir = cfg.LogDir
	if w.dir == "" && cfg.DataDir != "" {
		d := settings["log_directory"]
		if d == "" {
			d = "log"
			if _, err := os.Stat(filepath.Join(cfg.DataDir, "pg_log")); err == nil {
				d = "pg_log"
			}
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(cfg.DataDir, d)
		}
		w.dir = d
	}
	// Report every configuration problem at once.
	var problems []error
	if w.dir == "" {
		problems = append(problems, ErrNoLogDir)
	} else if fi, err := os.Stat(w.dir); err != nil {
		problems = append(problems, fmt.Errorf("walwatch: log directory: %w", err))
	} else if !fi.IsDir() {
		problems = append(problems, fmt.Errorf("walwatch: log directory %s is not a directory", w.dir))
	}
	if cfg.Start == StartResume && cfg.Resume.IsZero() {
		problems = append(problems, errors.New("walwatch: StartResume needs Config.Resume (a Position saved from an Event)"))
	}
	if cfg.PollOnly && cfg.PollInterval < 0 {
		problems = append(problems, errors.New("walwatch: PollOnly with polling disabled would read nothing: set PollInterval"))
	}
	switch cfg.Format {
	case FormatAuto, FormatStderr, FormatCSV, FormatJSON:
	default:
		problems = append(problems, fmt.Errorf("walwatch: unknown format %q (want stderr, csvlog or jsonlog)", cfg.Format))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	w.decideFormat(settings)
	if w.cfg.Pattern == "" && settings["log_filename"] != "" {
		w.cfg.Pattern = filenamePattern(settings["log_filename"], w.format)
	}
	w.decidePrefix(settings)
	w.m = newMachine(State{}, cfg.Grace, cfg.TimelineSwitchWait)
	if cfg.Start == StartResume {
		w.m = newMachine(cfg.Resume.State, cfg.Grace, cfg.TimelineSwitchWait)
	}
	w.state = w.m.st
	if !cfg.PollOnly && cfg.Start != StartReplay {
		// Buffered, so that a burst (a rotation, many files at once) is
		// drained in one go and costs one rescan.
		fsw, err := fsnotify.NewBufferedWatcher(4096)
		if err != nil {
			return nil, fmt.Errorf("walwatch: fsnotify: %w", err)
		}
		if err := fsw.Add(w.dir); err != nil {
			fsw.Close()
			return nil, fmt.Errorf("walwatch: watch %s: %w", w.dir, err)
		}
		w.fsw = fsw
	}
	w.events = make(chan Event, cfg.EventBuffer)
	w.errors = make(chan error, 16)
	w.done = make(chan struct{})
	w.wg.Add(1)
	go w.run()
	return w, nil
}

func (w *Watcher) decideFormat(settings map[string]string) {
	if w.format != FormatAuto {
		return
	}
	if d := settings["log_destination"]; d != "" {
		switch {
		case containsWord(d, "jsonlog"):
			w.format = FormatJSON
		case containsWord(d, "csvlog"):
			w.format = FormatCSV
		default:
			w.format = FormatStderr
		}
		return
	}
	if w.cfg.DataDir != "" {
		if _, f := currentLogfile(w.cfg.DataDir, FormatAuto); f != FormatAuto {
			w.format = f
			return
		}
	}
	w.format = FormatStderr
	saved := w.cfg.Pattern
	w.cfg.Pattern = "*"
	cands, _ := w.list()
	w.cfg.Pattern = saved
	for i := len(cands) - 1; i >= 0; i-- {
		switch filepath.Ext(cands[i].path) {
		case ".json":
			w.format = FormatJSON
			return
		case ".csv":
			w.format = FormatCSV
			return
		}
		if w.matches(filepath.Base(cands[i].path)) {
			return
		}
	}
}

// filenamePattern turns log_filename (strftime escapes) into a glob for the
// files of format: csvlog and jsonlog replace a trailing .log or append
// their extension, as the server does.
func filenamePattern(logFilename string, f Format) string {
	var b []byte
	for i := 0; i < len(logFilename); i++ {
		c := logFilename[i]
		switch {
		case c == '%' && i+1 < len(logFilename):
			i++
			if logFilename[i] == '%' {
				b = append(b, '%')
			} else if len(b) == 0 || b[len(b)-1] != '*' {
				b = append(b, '*')
			}
		case c == '*' || c == '?' || c == '[' || c == '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	p := string(b)
	ext := map[Format]string{FormatCSV: ".csv", FormatJSON: ".json"}[f]
	if ext != "" {
		p = strings.TrimSuffix(p, ".log") + ext
	}
	return p
}

func containsWord(list, word string) bool {
	for _, f := range splitList(list) {
		if f == word {
			return true
		}
	}
	return false
}

func splitList(s string) []string {
	var out []string
	cur := ""
	for _, c := range s + "," {
		switch c {
		case ',':
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
		case ' ', '\t':
		default:
			cur += string(c)
		}
	}
	return out
}

func (w *Watcher) decidePrefix(settings map[string]string) {
	if w.format != FormatStderr {
		return
	}
	switch {
	case w.cfg.Prefix != "":
		w.prefix = compilePrefix(w.cfg.Prefix)
	case settings["log_line_prefix"] != "":
		w.prefix = compilePrefix(settings["log_line_prefix"])
	default:
		// Sniffed from the newest file with something in it; if there is
		// none yet, from the first data read (see sniffLate).
		w.prefix, w.sniffPending = compilePrefix(DefaultPrefix), true
		cands, _ := w.list()
		for i := len(cands) - 1; i >= 0 && w.sniffPending; i-- {
			if cands[i].size > 0 {
				w.sniffLate(cands[i].path)
			}
		}
	}
}

// sniffLate sniffs log_line_prefix from path if it is still unknown, and
// hands it to the assemblers (which have read nothing that mattered yet:
// the files were empty).
func (w *Watcher) sniffLate(path string) {
	if !w.sniffPending {
		return
	}
	b, err := readHead(path, 64<<10)
	if err != nil || len(b) == 0 {
		return
	}
	p, ok := sniffPrefix(b)
	if !ok {
		return
	}
	w.prefix, w.sniffPending = p, false
	w.log.Debug("walwatch: log_line_prefix sniffed", "prefix", p.src, "file", path)
	for _, t := range w.files {
		if a, ok := t.asm.(*stderrAsm); ok {
			a.p, a.fast = p, fastPrefix(p)
		}
	}
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := f.ReadAt(b, 0)
	if m > 0 {
		err = nil
	}
	return b[:m], err
}

// Events returns the channel of events. It is closed when the watcher
// stops: after Close, or after the last record in StartReplay mode.
func (w *Watcher) Events() <-chan Event { return w.events }

// Errors returns the channel of non-fatal errors (unreadable files, fsnotify
// trouble). It is buffered; errors that find it full are dropped (and
// logged), so a caller that ignores it does not stall the watcher. It is
// closed together with Events.
func (w *Watcher) Errors() <-chan error { return w.errors }

// Close stops the watcher and waits for its goroutine; Events and Errors
// are closed. It is safe to call more than once and from any goroutine.
func (w *Watcher) Close() error {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
	return nil
}

// State returns the current state.
func (w *Watcher) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// Position returns the position just after the last record read, with the
// state there; StartResume from it continues without loss or repetition.
func (w *Watcher) Position() Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pos
}

// Format returns the format being followed (decided by New for FormatAuto).
func (w *Watcher) Format() Format { return w.format }

// Dir returns the log directory being followed.
func (w *Watcher) Dir() string { return w.dir }

func (w *Watcher) fail(err error) {
	w.log.Warn("walwatch: error", "err", err)
	select {
	case w.errors <- err:
	default:
	}
}

// run is the watcher's goroutine.
func (w *Watcher) run() {
	defer w.wg.Done()
	defer func() {
		for _, t := range w.files {
			if t.f != nil {
				t.f.Close()
			}
		}
		if w.fsw != nil {
			w.fsw.Close()
		}
		close(w.events)
		close(w.errors)
	}()
	if !w.begin() {
		return
	}
	if w.cfg.Start == StartReplay {
		w.out = w.m.finish(w.out[:0])
		w.emit()
		return
	}
	var fsEvents <-chan fsnotify.Event
	var fsErrors <-chan error
	if w.fsw != nil {
		fsEvents, fsErrors = w.fsw.Events, w.fsw.Errors
	}
	var poll <-chan time.Time
	if w.cfg.PollInterval > 0 {
		tk := time.NewTicker(w.cfg.PollInterval)
		defer tk.Stop()
		poll = tk.C
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var due <-chan time.Time
		if t, ok := w.m.nextDue(); ok {
			timer.Reset(time.Until(t))
			due = timer.C
		}
		select {
		case <-w.done:
			return
		case ev, ok := <-fsEvents:
			if !ok {
				fsEvents = nil
				continue
			}
			w.onFSEvents(ev, fsEvents)
		case err, ok := <-fsErrors:
			if !ok {
				fsErrors = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Info("walwatch: fsnotify queue overflow, rescanning")
			} else {
				w.fail(fmt.Errorf("walwatch: fsnotify: %w", err))
			}
			w.scan()
		case <-poll:
			w.scan()
		case <-due:
			w.out = w.m.due(time.Now(), time.Time{}, w.out[:0])
		}
		timer.Stop()
		w.emit()
		select {
		case <-w.done:
			return
		default:
		}
	}
}

// onFSEvents handles one fsnotify event and whatever else is queued: plain
// writes to known files are read directly, anything else rescans.
func (w *Watcher) onFSEvents(first fsnotify.Event, more <-chan fsnotify.Event) {
	paths := map[string]bool{}
	full := false
	add := func(ev fsnotify.Event) {
		if !w.matches(filepath.Base(ev.Name)) {
			return // another destination's file (say, .csv beside .log)
		}
		switch {
		case ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename):
			full = true
		case ev.Has(fsnotify.Write):
			paths[ev.Name] = true
		}
	}
	add(first)
drain:
	for i := 0; i < 1<<16; i++ {
		select {
		case ev, ok := <-more:
			if !ok {
				break drain
			}
			add(ev)
		default:
			break drain
		}
	}
	if full || !w.readPaths(paths) {
		w.scan()
	}
}

// begin positions the watcher per the start mode and reads what must be
// read first. It returns false if the watcher was closed meanwhile.
func (w *Watcher) begin() bool {
	cands, err := w.list()
	if err != nil {
		w.fail(&FileError{File: w.dir, Op: "list", Err: err})
	}
	switch w.cfg.Start {
	case StartReplay:
		for _, c := range cands {
			w.read(w.track(c, 0, 1, true))
			if w.closed() {
				return false
			}
		}
		return true
	case StartResume:
		w.resume(cands)
	default:
		w.live(cands)
	}
	w.scan()
	return !w.closed()
}

func (w *Watcher) live(cands []candidate) {
	cur := -1
	if w.cfg.DataDir != "" {
		if p, _ := currentLogfile(w.cfg.DataDir, w.format); p != "" {
			if !filepath.IsAbs(p) {
				p = filepath.Join(w.cfg.DataDir, p)
			}
			for i, c := range cands {
				if sameFile(c.path, p) {
					cur = i
				}
			}
		}
	}
	if cur < 0 {
		cur = len(cands) - 1
	}
	for i, c := range cands {
		if i != cur {
			w.track(c, c.size, 1, false)
		}
	}
	if cur >= 0 {
		// Read back the current file; if it tells nothing (a rotation just
		// happened), also the few before it, oldest first.
		w.silent = true
		for start := cur; ; start-- {
			w.m = newMachine(State{}, w.cfg.Grace, w.cfg.TimelineSwitchWait)
			for i := start; i <= cur; i++ {
				w.read(w.track(cands[i], 0, 1, true))
			}
			if w.m.st.Phase != PhaseUnknown || start == 0 || cur-start+1 >= maxReadBack {
				break
			}
		}
		w.silent = false
		if ev, ok := w.m.current(); ok {
			w.out = append(w.out[:0], ev)
			w.emit()
		}
	}
	if w.cfg.ConnString != "" && w.m.st.Phase == PhaseUnknown {
		w.initialBySQL()
	}
}

// maxReadBack bounds how many files a live start reads back to learn the
// present state.
const maxReadBack = 4

func sameFile(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

func (w *Watcher) resume(cands []candidate) {
	p := w.cfg.Resume
	id := fileID{dev: p.Dev, ino: p.Ino}
	at := -1
	for i, c := range cands {
		if c.id == id && w.sameStart(c.path, p) {
			at = i
		}
	}
	for i, c := range cands {
		switch {
		case i == at && c.size >= p.Offset:
			t := w.track(c, p.Offset, p.Line, p.Line > 0)
			// Keep fingerprinting the file, for truncation and later resumes.
			t.head, _ = readHead(c.path, int(min(p.Offset, headLen)))
		case i == at:
			w.track(c, 0, 1, true) // truncated since
		case at >= 0 && i < at, at < 0 && !c.mtime.After(p.ModTime):
			w.track(c, c.size, 1, false)
		default:
			w.track(c, 0, 1, true) // written after the position
		}
	}
	if at < 0 {
		w.fail(fmt.Errorf("%w: %s (dev %d inode %d) is gone; reading the files written after it", ErrResumeNotFound, p.File, p.Dev, p.Ino))
	}
}

// sameStart checks a resume candidate's first bytes against the position's
// fingerprint (inode numbers are reused).
func (w *Watcher) sameStart(path string, p Position) bool {
	if p.HeadLen == 0 {
		return true
	}
	b, err := readHead(path, p.HeadLen)
	return err == nil && len(b) == p.HeadLen && headSum(b) == p.HeadSum
}

func headSum(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

func (w *Watcher) closed() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// record handles one record of file t.
func (w *Watcher) record(t *tracked, r *rawRecord) {
	c, reason := classify(r)
	// The position is published (under the lock) after each read and with
	// each event, not per record: most records mean nothing.
	w.last = lastRecord{t: t, end: r.end, line: r.lastLine + 1}
	if c == clsNone || c == clsNoise {
		return
	}
	ev := Event{
		Reason:   reason,
		LogTime:  r.logTime(w.cfg.Location),
		Message:  text(r.message),
		Detail:   text(r.detail),
		SQLState: text(r.sqlstate),
		File:     t.path,
		Line:     r.line,
	}
	w.out = w.m.feed(c, ev, w.out)
	w.publish()
	if w.silent {
		w.out = w.out[:0]
		return
	}
	w.emit()
}

// lastRecord locates the end of the last record handled.
type lastRecord struct {
	t    *tracked
	end  int64
	line int
}

// publish makes the state and the position after the last record visible
// to State and Position.
func (w *Watcher) publish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state = w.m.st
	if t := w.last.t; t != nil {
		w.pos = Position{File: t.path, Dev: t.id.dev, Ino: t.id.ino, Offset: w.last.end, Line: w.last.line, ModTime: t.mtime,
			HeadLen: len(t.head), HeadSum: headSum(t.head)}
	}
	w.pos.State = w.state
}

// emit sends the queued events.
func (w *Watcher) emit() {
	if len(w.out) == 0 {
		return
	}
	w.publish()
	w.mu.Lock()
	pos := w.pos
	w.mu.Unlock()
	for _, ev := range w.out {
		ev.Detected = time.Now()
		ev.Position = pos
		if w.cfg.ConnString != "" && (ev.Kind == KindFault || ev.Kind == KindRecovered || ev.Kind == KindStreaming) {
			ev.Receiver = w.confirm()
		}
		select {
		case w.events <- ev:
		case <-w.done:
			w.out = w.out[:0]
			return
		}
	}
	w.out = w.out[:0]
}
