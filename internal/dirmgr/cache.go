// On-disk directory cache (dir-spec §5: clients keep the latest
// consensus, authority certificates and microdescriptors so that a
// restart need not download them again). Files live in DataDir (mode
// 0700) and are replaced atomically. They have C tor's names, and a C
// tor DataDirectory is read as well: its CRLF line ends (cached-certs
// on Windows), '@' annotation lines and microdescriptor journal
// (cached-microdescs.new) are understood (netdoc.FromCacheFile).

package dirmgr

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotor/gotor/internal/netdoc"
)

const (
	fileConsensus  = "cached-microdesc-consensus"
	fileCerts      = "cached-certs"
	fileMicrodescs = "cached-microdescs"
	// fileMicrodescsJournal is C tor's journal of microdescriptors
	// added since it last rewrote cached-microdescs; gotor reads it only.
	fileMicrodescsJournal = "cached-microdescs.new"
)

type cache struct{ dir string }

func openCache(dir string) (*cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dirmgr: data directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dirmgr: data directory: %w", err)
	}
	return &cache{dir: dir}, nil
}

// read returns the documents in the file name ("" if it does not
// exist), as served (netdoc.FromCacheFile).
func (c *cache) read(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return netdoc.FromCacheFile(string(b)), err
}

func (c *cache) write(name, data string) error {
	f, err := os.CreateTemp(c.dir, name+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o600)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(c.dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// loadCache loads certificates, microdescriptors and, if still
// reasonably live and validly signed, the consensus.
func (m *Manager) loadCache() error {
	now := m.now()
	var errs []error
	if text, err := m.cache.read(fileCerts); err != nil {
		errs = append(errs, err)
	} else if text != "" {
		certs, perr := netdoc.ParseKeyCerts(text)
		if perr != nil {
			errs = append(errs, perr)
		}
		if _, aerr := m.addCerts(certs, now); aerr != nil {
			errs = append(errs, aerr)
		}
	}
	for _, name := range []string{fileMicrodescs, fileMicrodescsJournal} {
		text, err := m.cache.read(name)
		if err != nil {
			errs = append(errs, err)
		}
		if text == "" {
			continue
		}
		mds, perr := netdoc.ParseMicrodescs(text)
		if perr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, perr))
		}
		m.mu.Lock()
		for _, md := range mds {
			m.mds[md.Digest] = md
		}
		m.mu.Unlock()
	}
	if text, err := m.cache.read(fileConsensus); err != nil {
		errs = append(errs, err)
	} else if text != "" {
		c, verr := m.verifyConsensus(context.Background(), text, now, netdoc.ReasonablyLive, nil)
		if verr != nil {
			errs = append(errs, fmt.Errorf("cached consensus: %w", verr))
		} else {
			m.mu.Lock()
			m.consensus = c
			m.mu.Unlock()
			m.setConsensusText(c, text)
		}
	}
	return errors.Join(errs...)
}

// saveMicrodescs writes the microdescriptors c lists.
func (m *Manager) saveMicrodescs(c *netdoc.Consensus) {
	if m.cache == nil {
		return
	}
	var b strings.Builder
	m.mu.Lock()
	for i := range c.Routers {
		if md, ok := m.mds[c.Routers[i].MicrodescDigest]; ok {
			b.WriteString(md.Text)
		}
	}
	m.mu.Unlock()
	if err := m.cache.write(fileMicrodescs, b.String()); err != nil {
		m.log.Warn("caching microdescriptors", "err", err)
	}
}
