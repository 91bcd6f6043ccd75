package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/gotor/gotor/internal/testnet"
)

// ensureTor installs Debian's tor package when tor or tor-gencert is
// missing, as .ci/run does, so the README's demo command works on a
// machine that has only Go. The package's system tor service is kept
// from starting (policy-rc.d): the demo runs its own tor processes on
// 127.0.0.1 only. Elsewhere than on Debian/Ubuntu it says what to install.
func ensureTor() error {
	if _, _, err := testnet.LookTor(""); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("%w; no apt-get here: install C tor (0.4.8 or later) and tor-gencert with your package manager", testnet.ErrTorMissing)
	}
	fmt.Println("== tor is not installed: installing Debian's tor package (apt-get install -y tor), as .ci/run does")
	sudo := []string{}
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			return errors.New("tor is missing and installing it needs root: run as root, or apt-get install -y tor")
		}
		sudo = []string{"sudo"}
	}
	run := func(args ...string) error {
		cmd := exec.Command(append(sudo, args...)[0], append(sudo, args...)[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.Run()
	}
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); errors.Is(err, os.ErrNotExist) {
		if err := run("sh", "-c", "printf '#!/bin/sh\\nexit 101\\n' > "+policy+" && chmod +x "+policy); err == nil {
			defer run("rm", "-f", policy)
		}
	}
	if err := run("apt-get", "update"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	if err := run("apt-get", "install", "-y", "tor"); err != nil {
		return fmt.Errorf("apt-get install tor: %w", err)
	}
	_, _, err := testnet.LookTor("")
	return err
}
