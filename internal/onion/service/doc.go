// Package service hosts v3 onion services: the service side of
// rend-spec-v3.
//
// Layout (one concern per file):
//
//   - keys.go: the HiddenServiceDir in C tor's formats (Appendix F and
//     G.1: hs_ed25519_secret_key / hs_ed25519_public_key tagged files,
//     hostname, authorized_clients/*.auth), so a directory moves between
//     C tor and gotor unchanged.
//   - env.go: Network, what the engine provides (the consensus and
//     4-hop circuits to a given last hop), and the adapter to
//     internal/circuit and internal/stream.
//   - service.go: Config, Service (Start, Published, Accept, Close; a
//     net.Listener) and the main loop, one step a second or when woken.
//   - intro.go: introduction points (§3.1 ESTABLISH_INTRO with a fresh
//     auth key, the DoS extension, INTRO_ESTABLISHED; lifetime, retries,
//     replacement) and INTRODUCE2 (§3.3: auth key, replay cache, hs-ntor
//     decryption with each descriptor's subcredential).
//   - descriptor.go: the two descriptors (§2.2.4.2: first and second
//     time period and SRV), their blinded and signing keys, C tor's OPE
//     revision counters (Appendix F.2), encryption with client
//     authorization (§2.5, hsdesc.Build).
//   - publish.go: uploads (§2.2.2, §2.2.3, §2.2.6: POST
//     /tor/hs/3/publish over BEGIN_DIR to the hsdir_spread_store HSDirs
//     of each replica), re-uploads every 60-120 minutes, when the intro
//     points change and to HSDirs new on the ring.
//   - rend.go: rendezvous (§4.2 RENDEZVOUS1, §4.2.1 the virtual hop).
//   - streams.go: BEGIN on rendezvous circuits to virtual ports (TCP and
//     unix: targets, or Accept), HiddenServiceMaxStreams and
//     ...CloseCircuit, as C tor's hs_service_set_conn_addr_port.
//   - replay.go, events.go: replay caches; events (HS_DESC) and counters.
//
// Proven against C tor 0.4.9 on the private network
// (service_integration_test.go): the C tor reference client fetches 10
// MiB intact through a service hosted here; listener (Accept) and unix:
// ports; an unmapped port is refused and the circuit stays; a C tor
// HiddenServiceDir serves the same address here and the HSDirs take our
// descriptors over C tor's (revision counters keep increasing); a
// directory made here runs under C tor, whose descriptors replace ours;
// with authorized_clients a C tor client with the key gets through and
// one without gets SOCKS error F4; 200 concurrent connections from the C
// tor client all succeed; killing the relay of an intro point, the
// service replaces it and is reachable again (bound 90 s, measured
// 11-15 s). The onion client of internal/onion reaches a service of
// this package too (gotor_client_integration_test.go, with 200
// concurrent streams). C tor's intro points accepted our
// ESTABLISH_INTRO (HANDSHAKE_AUTH with the circuit's KH, signature), its
// HSDirs our descriptors, its client our RENDEZVOUS1 and virtual hop.
//
// Proven by vectors: OPE (C tor test_crypto_ope.c). By fakes
// (fake_test.go, service_test.go): every INTRODUCE2 error path (replay of
// the cell or its cookie, bad MAC, wrong auth key or subcredential,
// truncated, legacy), the DoS extension's encoding, descriptors a client
// decodes (and cannot without its key), stream refusals, replacement of a
// dead intro point, HSDir refusals, no goroutine left after Close.
package service
