package engine

// DirectoryStats counts the client's directory traffic since New: how
// many consensus documents it downloaded and how many bootstraps used the
// cached consensus instead (dir-spec §5).
type DirectoryStats struct {
	ConsensusDownloads   int64 // consensus documents downloaded
	ConsensusFromCache   int64 // bootstraps that used the cached consensus
	CertDownloads        int64 // key-certificate requests that succeeded
	MicrodescRequests    int64 // microdescriptor batch requests that succeeded
	MicrodescsDownloaded int64 // microdescriptors received
}

// DirectoryStats returns the directory traffic counters.
func (c *Engine) DirectoryStats() DirectoryStats {
	s := c.dir.Stats()
	return DirectoryStats{
		ConsensusDownloads:   s.ConsensusDownloads,
		ConsensusFromCache:   s.ConsensusFromCache,
		CertDownloads:        s.CertDownloads,
		MicrodescRequests:    s.MicrodescRequests,
		MicrodescsDownloaded: s.MicrodescsDownloaded,
	}
}
