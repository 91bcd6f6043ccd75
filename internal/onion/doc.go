// Package onion is gotor's v3 onion service client (rend-spec-v3):
// address validation, descriptor fetch and decryption, introduction,
// rendezvous and the end-to-end virtual hop.
//
// Layout:
//
//   - hscrypto: onion addresses (§6, §2.2.7), key blinding and
//     subcredentials (§2.1, App. A.2), time periods and the HSDir hash
//     ring (§2.2.1, §2.2.3, §2.2.4.1, §2.3.1), hs-ntor (§3.3.2, §4.2),
//     descriptor layer encryption (§2.5.3) and the virtual hop's relay
//     crypto (§4.2.1, §5: SHA3-256 digests, AES-256-CTR).
//   - hsdesc: descriptor parsing/verification/decryption (§2.4, §2.5),
//     client authorization (§2.5.1.2), a Build function for tests.
//   - hscell: relay message bodies (§3.2, §3.3, §4.1, §4.2).
//   - service: hosting onion services (the service side of the
//     protocol; see its package documentation).
//   - onion (this package): Client, which drives the protocol over the
//     small CircuitBuilder/Circ interfaces, the ClientOnionAuthDir loader,
//     and typed errors carrying prop304 SOCKS codes (F0–F7).
//
// What is proven by external vectors:
//
//   - address encoding/checksum (C tor hs_build_address.py);
//   - blinding factor, blinded public and private keys, subcredential
//     (C tor test_hs_common.c test_build_blinded_key, the ten blinding
//     vectors of C tor's ed25519_vectors.inc, arti's vector for a real
//     C tor service);
//   - time period numbers and start times (rend-spec §2.2.1 example,
//     C tor test_time_period), hs_index and hsdir_index (C tor
//     hs_indexes.py), disaster SRV (C tor test_disaster_srv);
//   - hs-ntor: INTRODUCE1 keys, the whole INTRODUCE1 body byte for byte,
//     the service reply and NTOR_KEY_SEED (rend-spec Appendix G.1, from
//     C tor on Chutney), including C tor's INTRODUCE1 padding to 246
//     bytes;
//   - descriptor parsing, certificate and signature checks, both
//     decryption layers, intro point parsing, and client authorization
//     with an x25519 key, on two real C tor descriptors (arti testdata).
//     Note: the descriptor cookie is 16 bytes as in C tor, although the
//     spec text says 32.
//
// What is proven against a real C tor 0.4.9 onion service on the
// private network (integration tests, internal/testnet):
//
//   - TestIntegrationFetchDescriptorFromCTorService: HSDir ring with
//     TestingTorNetwork periods (24 voting intervals, offset 12) and the
//     disaster SRV of a network whose authorities do not run the
//     shared-random protocol (asserted from gotor's parameters and the
//     harness's own reading of the consensus), blinding for those periods,
//     descriptor fetch over real circuits and BEGIN_DIR, verification and
//     decryption;
//   - TestIntegrationDialCTorService: the whole Client flow — rendezvous
//     point, INTRODUCE1 through a real intro point (accepted by C tor),
//     RENDEZVOUS2 AUTH check, the virtual hop's SHA3-256/AES-256-CTR relay
//     crypto (RendHop) in both directions, RELAY_BEGIN ":port" to the
//     service, data both ways, and a second stream on the same rendezvous
//     circuit. Intro and rendezvous circuits there are a test-only
//     miniCirc over internal/channel + internal/torcrypto (written before
//     internal/circuit could carry onion-service messages);
//   - TestIntegrationHSDirRing: on a 15-HSDir network, exactly the 8
//     HSDirs gotor computes as the store set (2 replicas x
//     hsdir_spread_store 4) serve the service's descriptor and all the
//     others answer 404 — the ring, hs_index/hsdir_index, time period,
//     SRV choice and blinding all agree with C tor (disaster SRV,
//     asserted);
//   - TestIntegrationClientAuthCTorService: a C tor service with an
//     authorized client: F4 without a key, F5 with a wrong one, and a
//     connection with the right one;
//   - TestIntegrationFetchWithSRV (in CI; 4.5-9 minutes after its
//     network started): on a second network whose authorities run the
//     shared-random protocol, fetches and the exact-ring check succeed
//     in both segments of the period (current SRV between TP and SRV,
//     previous SRV otherwise), gotor's SRV equals the consensus's as the
//     harness reads it, and one of them comes from a full commit+reveal
//     run (a reveal from every authority).
//
// What is proven only by self-consistency (round trips, fakes):
//
//   - the Client's remaining error paths (invalid descriptors,
//     INTRODUCE_ACK failures, bad RENDEZVOUS2 AUTH, dead rendezvous
//     circuits, concurrent dials, isolation) against a fake network.
//
// Production wiring: client/onion.go adapts internal/circuit to Circ
// (Circuit.ReceiveControl for stream-0 messages 32–40, ExtendVirtual for
// RendHop, stream.Begin with an empty host) and builds guard–middle–last
// circuits through the guard manager. client/onion_integration_test.go
// fetches 10 MiB from a C tor onion service through gotor's SocksPort,
// with and without client authorization, and checks the prop 304 codes
// for an absent service (F0) and a malformed address (F6).
package onion
