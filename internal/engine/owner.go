package engine

// __OwningControllerProcess (control-spec §3.23 TAKEOWNERSHIP): a
// controller that starts gotor names its PID; gotor shuts down once that
// process is gone, as C tor's monitor_owning_controller_process does (C
// tor polls every 15 s with kill(pid, 0); gotor every second). RESETCONF
// __OwningControllerProcess stops the watch.

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/gotor/gotor/internal/logging"
)

// ownerPollInterval is how often the owning controller is looked for.
const ownerPollInterval = time.Second

// watchOwner shuts gotor down when the configured owning controller
// process is gone; it returns when ctx ends.
func (c *Engine) watchOwner(ctx context.Context) {
	t := time.NewTicker(ownerPollInterval)
	defer t.Stop()
	for {
		if pid := c.conf().OwningControllerProcess; pid > 0 && !processExists(pid) {
			c.log.Log(context.Background(), logging.LevelNotice, "Owning controller process has vanished -- exiting now.")
			c.requestShutdown()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// processExists reports whether a process with this PID exists (one that
// exists but belongs to another user counts: signal 0 then fails with
// EPERM, not ESRCH).
func processExists(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	defer p.Release()
	err = p.Signal(syscall.Signal(0))
	return !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH)
}
