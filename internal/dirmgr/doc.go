// Package dirmgr is gotor's directory manager (dir-spec §4, §5): it
// knows the directory authorities and fallbacks, downloads the microdesc
// consensus, the authority key certificates and the microdescriptors,
// verifies them (internal/netdoc), caches them in the data directory, and
// publishes an immutable *netdir.NetDir.
//
// Typical use:
//
//	m, err := dirmgr.New(dirmgr.Config{
//		Authorities: auths,          // nil: DefaultAuthorities()
//		DataDir:     dir,            // cache, mode 0700
//		Progress:    func(p dirmgr.Progress) { log.Print(p) },
//		DirDial:     beginDirDialer, // nil: plain TCP to DirPorts
//		Fallbacks:   dirmgr.DefaultFallbacks(), // with the default authorities
//	})
//	if err := m.Bootstrap(ctx); err != nil { ... } // 0% .. 100% done
//	nd := m.NetDir()
//	updates, unsubscribe := m.Subscribe()
//	go m.Run(ctx) // refreshes at dir-spec §5.1 times
//	if err := m.Usable(); err != nil { ... } // before building a circuit:
//	        // ErrConsensusTooOld 24 h past valid-until (Liveness says which)
//
// Verification failures are reported with errors wrapping
// netdoc.ErrBadSignature, netdoc.ErrTooFewSignatures, netdoc.ErrExpired
// and netdoc.ErrNotYetValid (test with errors.Is).
package dirmgr
