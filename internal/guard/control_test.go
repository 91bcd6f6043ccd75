package guard

import (
	"slices"
	"strings"
	"testing"

	"github.com/gotor/gotor/internal/netdir"
	"github.com/gotor/gotor/internal/path"
)

// Restrict applies EntryNodes and ExcludeNodes to a running manager;
// DropGuards replaces every guard.
func TestRestrictAndDropGuards(t *testing.T) {
	m, _, d := newTest(t, Config{})
	m.SetNetDir(d)
	prim := m.PrimaryGuards()
	excl := path.MustParseNodeSet("$" + strings.ToUpper(hexOf(prim[0])))
	m.Restrict(nil, excl, 0)
	for i := 0; i < 30; i++ {
		r, a := mustPick(t, m, d, Usage{})
		if r.RSAID == prim[0] {
			t.Fatal("ExcludeNodes set at run time ignored")
		}
		a.Report(true)
	}
	var chosen *netdir.Relay
	for _, r := range d.Relays {
		if IsGuardCandidate(r) && !slices.Contains(prim, r.RSAID) {
			chosen = r
			break
		}
	}
	m.Restrict(path.MustParseNodeSet(chosen.Nickname), nil, 0)
	for i := 0; i < 10; i++ {
		r, a := mustPick(t, m, d, Usage{})
		if r != chosen {
			t.Fatalf("EntryNodes set at run time ignored: %s", r.Nickname)
		}
		a.Report(true)
	}
	m.Restrict(nil, nil, 0)
	before := m.Sampled()
	m.DropGuards()
	after := m.Sampled()
	if len(after) == 0 {
		t.Fatal("no guards sampled after DropGuards")
	}
	confirmed := 0
	for _, g := range before {
		if g.Confirmed {
			confirmed++
		}
	}
	if confirmed == 0 {
		t.Fatal("no confirmed guard before DropGuards: the test proves nothing")
	}
	for _, g := range after {
		if g.Confirmed {
			t.Errorf("guard %s still confirmed after DropGuards", g.Nickname)
		}
	}
	if r, a := mustPick(t, m, d, Usage{}); r == nil {
		t.Fatal("no pick after DropGuards")
	} else {
		a.Close()
	}
}
