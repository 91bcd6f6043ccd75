package testnet

// The rule for tests that need an external program (C tor, curl, stem):
// outside CI a missing program skips the test; in CI (CI=true or CI=1,
// as GitHub Actions, GitLab and most CI systems set it) it fails, so a
// comparison with C tor can never silently stop running.

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the environment says this is a CI run: CI=true or
// CI=1.
func InCI() bool {
	ci := os.Getenv("CI")
	return ci == "true" || ci == "1"
}

// missing skips t, or fails it when InCI.
func missing(t testing.TB, what string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s: %v\n(CI is set: tests that compare with it may not be skipped)", what, err)
	}
	t.Skipf("%s: %v; skipping", what, err)
}

// NeedTool returns the path of the program name (e.g. "tor", "curl"),
// skipping t when it is not installed, or failing t in CI.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" is not installed", err)
	}
	return p
}

// NeedStem returns a python3 that imports stem (Debian's python3-stem is
// for the system python3, so /usr/bin/python3 is tried first), skipping
// t when there is none, or failing t in CI.
func NeedStem(t testing.TB) string {
	t.Helper()
	var err error
	for _, cand := range []string{"/usr/bin/python3", "python3"} {
		var p string
		if p, err = exec.LookPath(cand); err != nil {
			continue
		}
		if err = exec.Command(p, "-c", "import stem").Run(); err == nil {
			return p
		}
	}
	missing(t, "python3 with stem (apt-get install python3-stem)", err)
	return ""
}
