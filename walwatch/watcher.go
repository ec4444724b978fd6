package walwatch

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
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
	ctlDir string // the data directory whose current_logfiles counts, or ""
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
	// inferPending: log_line_prefix was neither given nor found in a file.
	inferPending bool
	inferred     bool // log_line_prefix was inferred from the lines
	out          []Event
	last         lastRecord
	growth       uint64        // counts file growths, to order them (tracked.grew)
	retired      []retiredHead // fingerprints of truncated files, for their copies
}

// New checks the configuration, decides the format and prefix, starts
// watching and returns at once; events arrive on Events.
func New(cfg Config) (*Watcher, error) {
	cfg.defaults()
	w := &Watcher{cfg: cfg, log: cfg.Logger, format: cfg.Format,
		files: map[fileID]*tracked{}, byPath: map[string]fileID{}, buf: make([]byte, 256<<10)}
	settings, err := w.configure()
	if err != nil {
		return nil, err
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
	detached := false
	add := func(ev fsnotify.Event) {
		if !w.matches(filepath.Base(ev.Name)) {
			// Another destination's file (say, .csv beside .log), or a
			// detached file under its new name.
			detached = true
			return
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
	} else if detached {
		w.followDetachedAll()
	}
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
	if !r.relayed {
		t.parsed++
	}
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
