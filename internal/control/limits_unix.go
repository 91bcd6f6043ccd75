//go:build unix

package control

import "syscall"

// descriptorLimit is the process's file descriptor limit (GETINFO
// process/descriptor-limit; C tor's get_max_sockets), -1 if unknown.
func descriptorLimit() int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return -1
	}
	return int64(rl.Cur)
}
