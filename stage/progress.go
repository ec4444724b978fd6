package stage

import (
	"fmt"
	"slices"
)

// Job names a Linker job.
type Job string

// Jobs.
const (
	JobLink     Job = "link"
	JobResync   Job = "resync"
	JobSync     Job = "sync"
	JobSnapshot Job = "snapshot"
	JobEnable   Job = "enable"
	JobDisable  Job = "disable"
)

// Step names a step of a job.
type Step string

// Steps of the link and resync jobs, in order; enable and disable use
// some of them.
const (
	StepPreflight Step = "preflight" // check everything, touch nothing
	StepStop      Step = "stop"      // resync: stop the staging server and the watcher
	StepClear     Step = "clear"     // resync: empty the data directory
	StepRestore   Step = "restore"   // write the backup into the data directory
	StepConfigure Step = "configure" // make it a standby of the source
	StepSettings  Step = "settings"  // apply the config settings
	StepStart     Step = "start"     // start the staging server
	StepStream    Step = "stream"    // wait until it streams from the source
	StepWatch     Step = "watch"     // start the log watcher
	StepSync      Step = "sync"      // the first sync: a snapshot
)

// The steps of each job, in the order they run.
var (
	linkSteps    = []Step{StepPreflight, StepRestore, StepConfigure, StepSettings, StepStart, StepStream, StepWatch, StepSync}
	resyncSteps  = []Step{StepPreflight, StepStop, StepClear, StepRestore, StepConfigure, StepSettings, StepStart, StepStream, StepWatch, StepSync}
	enableSteps  = []Step{StepStart, StepWatch, StepStream}
	disableSteps = []Step{StepStop}
)

// Progress reports a job's advance to Config.Progress: one call when each
// step begins, and, during the restore, calls with the bytes written.
type Progress struct {
	Job   Job  `json:"job"`
	Step  Step `json:"step"`
	Index int  `json:"index"` // 1-based position of Step in the job
	Steps int  `json:"steps"` // number of steps in the job
	// Done and Total count bytes for the restore and take-backup steps (0
	// otherwise).
	Done  int64 `json:"done,omitempty"`
	Total int64 `json:"total,omitempty"`
	// Percent is the whole job's advance, 0 to 100, for a single bar: each
	// step counts for one share, the restore for half of the job.
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty"`
}

// restoreShare is the part of a job's bar the restore takes: it moves the
// data, every other step is quick beside it.
const restoreShare = 50.0

// percent spreads a job over 100: the restore takes restoreShare, every
// other step an equal share of the rest. index is 1-based; done and total
// are the restore's bytes.
func percent(steps []Step, index int, done, total int64) float64 {
	hasRestore := slices.Contains(steps, StepRestore)
	other, share := float64(len(steps)), 0.0
	if hasRestore {
		other, share = other-1, restoreShare
	}
	each := (100 - share) / other
	p := 0.0
	for i := 0; i < index-1 && i < len(steps); i++ {
		if steps[i] == StepRestore {
			p += share
		} else {
			p += each
		}
	}
	if index >= 1 && index <= len(steps) && steps[index-1] == StepRestore && total > 0 {
		p += share * float64(min(done, total)) / float64(total)
	}
	return min(p, 100)
}

// run is one job in progress: its steps, for the log, the progress bar
// and the state file.
type run struct {
	l     *Linker
	job   Job
	steps []Step
	at    Step // the step entered last
	// mark records each step in the state file, so that a process killed
	// mid-job leaves a trace the next one acts on (link and resync only).
	mark bool
}

// enter begins a step: the one place that logs it, reports it to
// Config.Progress and records it in the state file.
func (r *run) enter(step Step, format string, a ...any) {
	r.at = step
	msg := fmt.Sprintf(format, a...)
	idx := slices.Index(r.steps, step) + 1
	r.l.log.Info(msg, "job", r.job, "step", step, "index", idx, "steps", len(r.steps))
	if r.mark {
		r.l.mark(r.job, step)
	}
	r.l.report(Progress{Job: r.job, Step: step, Index: idx, Steps: len(r.steps), Percent: percent(r.steps, idx, 0, 0), Message: msg})
}

// restored reports the restore's bytes written.
func (r *run) restored(done, total int64) {
	idx := slices.Index(r.steps, StepRestore) + 1
	r.l.report(Progress{Job: r.job, Step: StepRestore, Index: idx, Steps: len(r.steps), Done: done, Total: total, Percent: percent(r.steps, idx, done, total)})
}

// done reports the job finished.
func (r *run) done(msg string) {
	r.l.report(Progress{Job: r.job, Step: r.at, Index: len(r.steps), Steps: len(r.steps), Percent: 100, Message: msg})
}

// fail wraps err as a failure of the step entered last.
func (r *run) fail(err error) error {
	if err == nil {
		return nil
	}
	return &StepError{Job: r.job, Step: r.at, Err: err}
}

func (l *Linker) report(p Progress) {
	if l.cfg.Progress != nil {
		l.cfg.Progress(p)
	}
}
