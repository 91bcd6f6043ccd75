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
//   - onion (this package): Client, which drives the protocol over the
//     small CircuitBuilder/Circ interfaces, the ClientOnionAuthDir loader,
//     and typed errors carrying prop304 SOCKS codes (F0–F7).
//
// What is proven by external vectors:
//
//   - address encoding/checksum (C tor hs_build_address.py);
//   - blinding factor, blinded public and private keys, subcredential
//     (C tor test_hs_common.c test_build_blinded_key; arti's vector for a
//     real C tor service);
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
// What is proven only by self-consistency (round trips, fakes):
//
//   - the HSDir ring selection (ResponsibleHSDirs) beyond its index
//     vectors: written after C tor's hs_get_responsible_hsdirs and
//     node_set_hsdir_index (fetch index: current period; SRV current in
//     the TP→SRV segment, else previous; disaster SRV when missing), and
//     TestingTorNetwork periods (24 voting intervals, offset 12);
//   - the virtual hop's relay crypto (RendHop) and key expansion order
//     Df|Db|Kf|Kb;
//   - the Client flow against a fake network (fake HSDir over an HTTP
//     pipe, fake intro point/service using hscrypto.ServiceIntro, fake
//     rendezvous point): retries across HSDirs, descriptor caching by
//     blinded key until expiry, rendezvous circuit reuse, error kinds.
//
// What awaits a real C tor onion service on the private network
// (internal/testnet): the Circ implementation over internal/circuit
// (stream-0 relay messages, BEGIN_DIR, adding a RendHop as the last
// layer, RELAY_BEGIN to the virtual hop) and the end-to-end test.
package onion
