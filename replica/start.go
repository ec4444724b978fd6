package replica

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pgstage/pgstage/internal/netcheck"
	"github.com/pgstage/pgstage/internal/secret"
)

// Start starts the staging server and returns once it runs as a standby:
// from 10, once pg_ctl start -w is satisfied (a hot standby that has reached
// a consistent state), or, when StartTimeout passed first, as long as the
// server still runs without a FATAL error (it waits for WAL from the source).
// A port already in use is reported before anything is started. When the
// server does not start, the error is a *StartError with the reason and
// the tail of the server log.
func (s *Standby) Start(ctx context.Context) error {
	_, r, err := s.version(ctx)
	if err != nil {
		return err
	}
	if st, err := s.Status(ctx); err == nil && st.Running {
		return nil
	}
	if err := s.checkPort(); err != nil {
		return err
	}
	if err := s.prepareLog(r); err != nil {
		return err
	}
	args := []string{"start", "-D", s.cfg.DataDir, "-l", s.cfg.LogFile, "-s"}
	if r.pgctlWaitsForStandby {
		args = append(args, "-w", "-t", seconds(s.cfg.StartTimeout))
	} else {
		args = append(args, "-W")
	}
	s.log.Info("replica: starting the staging server", "data_dir", s.cfg.DataDir, "port", s.cfg.Port)
	out, err := s.command(ctx, r, "pg_ctl", args...).CombinedOutput()
	if err != nil {
		// pg_ctl -w also gives up on a hot standby that is up but cannot
		// reach a consistent state yet (its WAL must come from a source
		// that is down): that one runs, and WaitStreaming will say why.
		if st, _ := s.Status(ctx); st.Running && startReason(s.logSince()) == "" {
			s.log.Warn("replica: the standby runs but is not consistent yet", "output", strings.TrimSpace(string(out)))
			return nil
		}
		return s.startError(fmt.Errorf("pg_ctl start: %w: %s", err, strings.TrimSpace(string(out))))
	}
	if !r.pgctlWaitsForStandby {
		return s.waitStarted(ctx)
	}
	return nil
}

// waitStarted waits for a 9.x server started without -w: until the log
// says it entered standby mode while the postmaster lives.
func (s *Standby) waitStarted(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.StartTimeout)
	for {
		st, _ := s.Status(ctx)
		text := s.logSince()
		if st.Running && (strings.Contains(text, "entering standby mode") || strings.Contains(text, "database system is ready")) {
			return nil
		}
		if !st.Running && strings.Contains(text, "FATAL") || time.Now().After(deadline) {
			return s.startError(errors.New("the server did not come up"))
		}
		select {
		case <-ctx.Done():
			return s.startError(ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func (s *Standby) startError(err error) error {
	text := s.logSince()
	reason := startReason(text)
	pw := s.cfg.Source.Password.Reveal()
	return &StartError{Reason: secret.Redact(reason, pw), LogFile: s.cfg.LogFile, LogTail: secret.Redact(tail(text, 20), pw), Err: secret.Error(err, pw)}
}

// startReason finds the first FATAL or PANIC line of the log that is not
// the walreceiver's, and the DETAIL lines that follow it (14+ says "recovery aborted because of insufficient
// parameter settings" and names the parameter in the DETAIL).
func startReason(text string) string {
	var reason []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if len(reason) == 0 {
			// The walreceiver's FATALs (source down, refused) do not stop
			// the server: they are WaitStreaming's business.
			if (strings.Contains(line, "FATAL:") || strings.Contains(line, "PANIC:")) && !containsAny(line, walreceiverFaults) {
				reason = append(reason, line)
			}
			continue
		}
		if !strings.Contains(line, "DETAIL:") {
			break
		}
		reason = append(reason, line)
	}
	return strings.Join(reason, " ")
}

// checkPort fails when something already listens on the staging port, on
// TCP at the listen addresses or on the Unix socket.
func (s *Standby) checkPort() error {
	err := netcheck.PortFree(s.cfg.Port, strings.Split(s.cfg.ListenAddresses, ","), strings.Split(s.cfg.SocketDir, ","))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPortInUse, err)
	}
	return nil
}

// Stop stops the staging server: a fast shutdown, then an immediate one if
// the fast one has not finished within StopTimeout.
func (s *Standby) Stop(ctx context.Context) error {
	s.closeQuery() // the server ends it anyway; do not keep it broken
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Running {
		return nil
	}
	_, r, err := s.version(ctx)
	if err != nil {
		return err
	}
	out, err := s.command(ctx, r, "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "fast", "-w", "-t", seconds(s.cfg.StopTimeout)).CombinedOutput()
	if err == nil {
		return nil
	}
	s.log.Warn("replica: fast shutdown did not finish, shutting down immediately", "output", strings.TrimSpace(string(out)))
	// Even when ctx has ended (which is what cut the fast shutdown short):
	// a server left half-way through a shutdown serves nobody.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 70*time.Second)
	defer cancel()
	out, err = s.command(ictx, r, "pg_ctl", "stop", "-D", s.cfg.DataDir, "-m", "immediate", "-w", "-t", "60").CombinedOutput()
	if err != nil {
		if st, serr := s.Status(ctx); serr == nil && !st.Running {
			return nil // it went down between the two attempts
		}
		return fmt.Errorf("replica: stopping the staging server: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
