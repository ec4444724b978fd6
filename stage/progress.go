package stage

// Jobs.
const (
	JobLink     = "link"
	JobResync   = "resync"
	JobSync     = "sync"
	JobSnapshot = "snapshot"
	JobEnable   = "enable"
	JobDisable  = "disable"
)

// Steps of the link and resync jobs, in order.
const (
	StepPreflight = "preflight" // check everything, touch nothing
	StepStop      = "stop"      // resync: stop the staging server and the watcher
	StepClear     = "clear"     // resync: empty the data directory
	StepRestore   = "restore"   // write the backup into the data directory
	StepConfigure = "configure" // make it a standby of the source
	StepSettings  = "settings"  // apply the config settings
	StepStart     = "start"     // start the staging server
	StepStream    = "stream"    // wait until it streams from the source
	StepWatch     = "watch"     // start the log watcher
	StepSync      = "sync"      // the first sync: a snapshot
)

var linkSteps = []string{StepPreflight, StepRestore, StepConfigure, StepSettings, StepStart, StepStream, StepWatch, StepSync}
var resyncSteps = []string{StepPreflight, StepStop, StepClear, StepRestore, StepConfigure, StepSettings, StepStart, StepStream, StepWatch, StepSync}

// Progress reports a job's advance to Config.Progress: one call when each
// step begins, and, during the restore, calls with the bytes written.
type Progress struct {
	Job   string `json:"job"`
	Step  string `json:"step"`
	Index int    `json:"index"` // 1-based position of Step in the job
	Steps int    `json:"steps"` // number of steps in the job
	// Done and Total count bytes for the restore step (0 otherwise).
	Done  int64 `json:"done,omitempty"`
	Total int64 `json:"total,omitempty"`
	// Percent is the whole job's advance, 0 to 100, for a single bar: each
	// step counts for one share, the restore for half of the job.
	Percent float64 `json:"percent"`
	Message string  `json:"message,omitempty"`
}

// percent spreads a job over 100: the restore takes 50, every other step
// an equal share of the rest.
func percent(steps []string, index int, done, total int64) float64 {
	hasRestore := false
	for _, s := range steps {
		if s == StepRestore {
			hasRestore = true
		}
	}
	other := float64(len(steps))
	restoreShare := 0.0
	if hasRestore {
		other--
		restoreShare = 50
	}
	each := (100 - restoreShare) / other
	p := 0.0
	for i := 0; i < index-1 && i < len(steps); i++ {
		if steps[i] == StepRestore {
			p += restoreShare
		} else {
			p += each
		}
	}
	if index >= 1 && index <= len(steps) && steps[index-1] == StepRestore && total > 0 {
		p += restoreShare * float64(done) / float64(total)
	}
	return min(p, 100)
}

// step reports the start of a step to the progress callback and the logger.
func (l *Linker) step(job string, steps []string, name, msg string) {
	idx := 0
	for i, s := range steps {
		if s == name {
			idx = i + 1
		}
	}
	l.log.Info(msg, "job", job, "step", name, "index", idx, "steps", len(steps))
	l.report(Progress{Job: job, Step: name, Index: idx, Steps: len(steps), Percent: percent(steps, idx, 0, 0), Message: msg})
}

func (l *Linker) report(p Progress) {
	if l.cfg.Progress != nil {
		l.cfg.Progress(p)
	}
}
