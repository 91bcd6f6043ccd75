//go:build !unix

package control

// descriptorLimit is -1 where the platform has no descriptor limit to
// report (C tor reports its own socket limit on Windows).
func descriptorLimit() int64 { return -1 }
