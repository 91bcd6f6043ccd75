// The service side of the time periods and SRVs: rend-spec-v3 §2.2.4.2
// [SERVICEUPLOAD] (first and second descriptor), §2.2.3 (spread_store),
// as C tor's node_set_hsdir_index (store_first/store_second) and
// build_descriptors_for_new_service choose them.

package hscrypto

import (
	"time"

	"github.com/gotor/gotor/internal/netdir"
)

// ServiceDescParams are the inputs of one of a service's two descriptors.
type ServiceDescParams struct {
	// Ring is the period, SRV and HSDir spread (hsdir_spread_store, in
	// the SpreadFetch field) of the descriptor's HSDir hash ring.
	Ring FetchParams
	// RunStart is the start of the shared random protocol run the
	// descriptor belongs to: its revision counter counts seconds from
	// there (C tor set_descriptor_revision_counter).
	RunStart time.Time
}

// ServiceUploadParams returns the parameters of the first and second
// descriptor for the consensus dir. Between a time period's start and the
// next SRV ("-" segments of the §2.2.4 figure) the first descriptor is
// for the previous period and the second for the current one; between
// the SRV and the next period ("=") the first is for the current period
// and the second for the next. The first uses the previous SRV, the
// second the current SRV (or the disaster SRV of their period when the
// consensus has none).
func ServiceUploadParams(dir *netdir.NetDir, sched Schedule) (first, second ServiceDescParams) {
	cur := sched.PeriodNum(dir.ValidAfter)
	tp1, tp2 := cur, cur+1
	if sched.InPeriodBetweenTPAndSRV(dir.ValidAfter) {
		tp1, tp2 = cur-1, cur
	}
	nrep := int(dir.Param("hsdir_n_replicas", DefaultHSDirNReplicas, 1, 16))
	spread := int(dir.Param("hsdir_spread_store", DefaultHSDirSpreadStore, 1, 128))
	mk := func(tp uint64, srv []byte) FetchParams {
		p := FetchParams{Schedule: sched, PeriodNum: tp, NReplicas: nrep, SpreadFetch: spread}
		if len(srv) == 32 {
			copy(p.SRV[:], srv)
		} else {
			p.SRV, p.Disaster = DisasterSRV(sched.PeriodLength, tp), true
		}
		return p
	}
	run := sched.SRVRunStart(dir.ValidAfter)
	runLen := time.Duration(sched.VotingInterval*srNRounds*srNPhases) * time.Second
	first = ServiceDescParams{Ring: mk(tp1, dir.SharedRandPrevious), RunStart: run.Add(-runLen)}
	second = ServiceDescParams{Ring: mk(tp2, dir.SharedRandCurrent), RunStart: run}
	return first, second
}
