//go:build unix

package main

// Profiling hook for benchmarks (cmd/gotor-bench). With
// GOTOR_CPUPROFILE=PATH in the environment, SIGUSR1 toggles profiling:
// the first SIGUSR1 starts a CPU profile and snapshots the allocation
// profile (PATH.allocs.base) and the malloc counters; the next one stops
// the CPU profile and writes PATH, PATH.allocs (allocation profile, to be
// read with `go tool pprof -base PATH.allocs.base`) and PATH.memstats
// (allocations made between the two signals); with GOTOR_TRACE=TRACEPATH
// too, a runtime execution trace of the same window goes to TRACEPATH.
// Without GOTOR_CPUPROFILE, SIGUSR1 keeps Go's default behaviour. Unix
// only (Windows has no SIGUSR1; there GOTOR_CPUPROFILE does nothing).

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"
)

func init() {
	path := os.Getenv("GOTOR_CPUPROFILE")
	if path == "" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	tracePath := os.Getenv("GOTOR_TRACE")
	go func() {
		var (
			tf     *os.File
			f      *os.File
			before runtime.MemStats
			start  time.Time
		)
		for range sig {
			if f == nil {
				var err error
				if f, err = os.Create(path); err != nil {
					fmt.Fprintf(os.Stderr, "gotor: GOTOR_CPUPROFILE: %v\n", err)
					f = nil
					continue
				}
				runtime.GC() // the allocation profile is published at GC
				writeProfile("allocs", path+".allocs.base")
				runtime.ReadMemStats(&before)
				start = time.Now()
				if err := pprof.StartCPUProfile(f); err != nil {
					fmt.Fprintf(os.Stderr, "gotor: GOTOR_CPUPROFILE: %v\n", err)
					f.Close()
					f = nil
				}
				if tracePath != "" {
					if tf, _ = os.Create(tracePath); tf != nil && trace.Start(tf) != nil {
						tf.Close()
						tf = nil
					}
				}
				continue
			}
			if tf != nil {
				trace.Stop()
				tf.Close()
				tf = nil
			}
			pprof.StopCPUProfile()
			f.Close()
			f = nil
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			runtime.GC()
			writeProfile("allocs", path+".allocs")
			os.WriteFile(path+".memstats", fmt.Appendf(nil,
				"seconds %.3f\nmallocs %d\nbytes %d\ngc %d\n",
				time.Since(start).Seconds(), after.Mallocs-before.Mallocs,
				after.TotalAlloc-before.TotalAlloc, after.NumGC-before.NumGC), 0o644)
		}
	}()
}

func writeProfile(name, path string) {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gotor: GOTOR_CPUPROFILE: %v\n", err)
		return
	}
	defer f.Close()
	pprof.Lookup(name).WriteTo(f, 0)
}
