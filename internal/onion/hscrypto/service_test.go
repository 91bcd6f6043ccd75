package hscrypto

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"
	"time"

	"filippo.io/edwards25519"
	"github.com/gotor/gotor/internal/netdir"
)

// C tor test_crypto_ope.c: test_crypto_ope_vectors (first ten vectors) and
// the boundaries of test_crypto_ope_oob.
func TestOPEVectors(t *testing.T) {
	kb, _ := hex.DecodeString("19e05891d55232c08c2cad91d612fdb9cbd6691949a0742434a76c80bc6992fe")
	o := NewOPE([32]byte(kb))
	vec := []struct {
		v int
		r uint64
	}{
		{121132, 3971694514}, {82283, 2695743564}, {72661, 2381548866}, {72941, 2390408421},
		{123122, 4036781069}, {12154, 402067100}, {121574, 3986197593}, {11391, 376696838},
		{65845, 2161801517}, {86301, 2828270975}, {7110, 234966492}, {9612, 318326551},
	}
	for _, c := range vec {
		if got, ok := o.Encrypt(c.v); !ok || got != c.r {
			t.Errorf("OPE(%d) = %d, want %d", c.v, got, c.r)
		}
	}
	for _, bad := range []int{-100, 0, OPEInputMax + 1} {
		if _, ok := o.Encrypt(bad); ok {
			t.Errorf("OPE(%d) accepted", bad)
		}
	}
	// Strictly increasing across sample boundaries.
	var last uint64
	for _, v := range []int{1, 5, 1023, 1024, 1025, 2047, 2048, 2049, 10000, OPEInputMax} {
		got, ok := o.Encrypt(v)
		if !ok || got <= last {
			t.Fatalf("OPE(%d) = %d after %d", v, got, last)
		}
		last = got
	}
}

func TestEdwardsFromMontgomery(t *testing.T) {
	for i := range 20 {
		seed := make([]byte, 32)
		seed[0] = byte(i)
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		p, err := new(edwards25519.Point).SetBytes(pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := EdwardsFromMontgomery([32]byte(p.BytesMontgomery()))
		if err != nil {
			t.Fatal(err)
		}
		want := [32]byte(pub)
		want[31] &^= 0x80 // sign bit 0, as C tor
		if got != want {
			t.Fatalf("key %d: %x, want %x", i, got, want)
		}
	}
	if _, err := EdwardsFromMontgomery([32]byte{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}); err == nil {
		t.Fatal("u = -1 has no ed25519 form")
	}
}

// The first descriptor covers clients one period behind the second; at
// the SRV the pair moves on by one period (rend-spec §2.2.4.2).
func TestServiceUploadParams(t *testing.T) {
	sched := DefaultSchedule
	srvCur, srvPrev := make([]byte, 32), make([]byte, 32)
	srvCur[0], srvPrev[0] = 1, 2
	at := func(s string) (ServiceDescParams, ServiceDescParams) {
		va, _ := time.Parse(time.RFC3339, s)
		return ServiceUploadParams(&netdir.NetDir{ValidAfter: va, SharedRandCurrent: srvCur, SharedRandPrevious: srvPrev}, sched)
	}
	// 2016-04-13 13:00 is in period 16904 (started 12:00), before the SRV.
	f, s := at("2016-04-13T13:00:00Z")
	if f.Ring.PeriodNum != 16903 || s.Ring.PeriodNum != 16904 || f.Ring.SRV[0] != 2 || s.Ring.SRV[0] != 1 {
		t.Fatalf("TP->SRV: %d/%x %d/%x", f.Ring.PeriodNum, f.Ring.SRV[0], s.Ring.PeriodNum, s.Ring.SRV[0])
	}
	if f.Ring.SpreadFetch != DefaultHSDirSpreadStore || !s.RunStart.Equal(time.Date(2016, 4, 13, 0, 0, 0, 0, time.UTC)) ||
		!f.RunStart.Equal(time.Date(2016, 4, 12, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("spread %d, runs %v %v", f.Ring.SpreadFetch, f.RunStart, s.RunStart)
	}
	// 01:00 on the 14th: after SRV#, first is the current period 16904.
	f, s = at("2016-04-14T01:00:00Z")
	if f.Ring.PeriodNum != 16904 || s.Ring.PeriodNum != 16905 {
		t.Fatalf("SRV->TP: %d %d", f.Ring.PeriodNum, s.Ring.PeriodNum)
	}
	// The client's fetch parameters always match one of the two.
	for _, ts := range []string{"2016-04-13T13:00:00Z", "2016-04-14T01:00:00Z", "2016-04-14T11:59:00Z"} {
		va, _ := time.Parse(time.RFC3339, ts)
		d := &netdir.NetDir{ValidAfter: va, SharedRandCurrent: srvCur, SharedRandPrevious: srvPrev}
		c := ClientFetchParams(d, sched)
		f, s := ServiceUploadParams(d, sched)
		if (c.PeriodNum != f.Ring.PeriodNum || c.SRV != f.Ring.SRV) && (c.PeriodNum != s.Ring.PeriodNum || c.SRV != s.Ring.SRV) {
			t.Errorf("%s: client %d/%x matches neither descriptor", ts, c.PeriodNum, c.SRV[0])
		}
	}
}
